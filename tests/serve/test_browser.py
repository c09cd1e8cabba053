"""The clinicians' chat page in Debian's real headless chromium: it loads only local assets, streams an
answer, and shows the passages a grounded answer cites (fetched with the clinician's key)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from serve.auth.protocol import Role
from tests.appliance.kb.conftest import medquad_pairs
from tests.serve.cdp import PipeBrowser, find_chromium
from tests.serve.live import LiveServer

pytestmark = pytest.mark.browser

ANSWER_STATE = "document.querySelector('#messages li.assistant')?.dataset.state"


@pytest.fixture()
def browser() -> Iterator[PipeBrowser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    opened = PipeBrowser(executable)
    try:
        yield opened
    finally:
        opened.close()


def test_chat_page_streams_an_answer_with_local_assets_only(browser: PipeBrowser, fuzz_server: LiveServer) -> None:
    session = _ask(browser, fuzz_server, "Name a symptom of asthma.")
    answer = browser.evaluate(session, "document.querySelector('#messages li.assistant').textContent")
    assert answer.strip(), "the streamed answer is shown"
    assert browser.evaluate(session, "document.getElementById('model').textContent") == fuzz_server.model_id
    assert browser.evaluate(session, "document.querySelectorAll('a.citation').length") == 0, "no knowledge base"

    urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert any(u.endswith("/static/app.js") for u in urls) and any(u.endswith("/static/style.css") for u in urls)
    _assert_local_and_clean(browser, fuzz_server)


def test_cited_passage_opens_in_the_page_with_the_users_key(browser: PipeBrowser, knowledge_server: LiveServer) -> None:
    pair = medquad_pairs()[2]
    session = _ask(browser, knowledge_server, pair["question"])
    links = browser.evaluate(
        session, "[...document.querySelectorAll('a.citation')].map(a => [a.textContent, a.dataset.href])"
    )
    assert links and links[0][0].startswith(f"[1] {pair['focus']}"), "citations are listed under the answer"
    browser.evaluate(session, "document.querySelector('a.citation').click()")
    shown = "document.querySelector('.passage')?.dataset.state"
    _wait(lambda: browser.evaluate(session, shown) in ("done", "error"), "the passage")
    text = browser.evaluate(session, "document.querySelector('.passage').textContent")
    assert browser.evaluate(session, shown) == "done", text
    passage = httpx.get(
        f"{knowledge_server.base_url}{links[0][1]}", headers=knowledge_server.auth(Role.clinician), timeout=10
    ).json()
    assert text == passage["text"] and text[:60] in pair["answer"]
    _assert_local_and_clean(browser, knowledge_server)


def _ask(browser: PipeBrowser, server: LiveServer, question: str) -> str:
    """Open the page, enter the clinician's key and a question, and wait for the finished answer."""
    session = browser.open_page()
    for domain in ("Page", "Network", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Page.navigate", {"url": f"{server.base_url}/"}, session)
    _wait(lambda: browser.evaluate(session, "document.readyState") == "complete", "page load")
    _wait(lambda: browser.evaluate(session, "!!document.getElementById('send')"), "page script")
    key = json.dumps(server.keys[Role.clinician])
    browser.evaluate(session, f"document.getElementById('api-key').value = {key}")
    browser.evaluate(session, f"document.getElementById('prompt').value = {json.dumps(question)}")
    browser.evaluate(session, "document.getElementById('send').click()")
    _wait(lambda: browser.evaluate(session, ANSWER_STATE) in ("done", "error"), "the answer")
    status = browser.evaluate(session, "document.getElementById('status').textContent")
    assert browser.evaluate(session, ANSWER_STATE) == "done", status
    return session


def _assert_local_and_clean(browser: PipeBrowser, server: LiveServer) -> None:
    urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    outside = [u for u in urls if not u.startswith(server.base_url) and not u.startswith(("data:", "about:"))]
    assert outside == [], "every asset is served by the appliance itself"
    errors = [e for e in browser.events if e.get("method") == "Log.entryAdded"
              and e["params"]["entry"]["level"] == "error"]
    assert errors == [], "no console errors, CSP violations included"


def _wait(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
