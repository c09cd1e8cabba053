"""The clinicians' chat page in Debian's real headless chromium: it loads only local assets and streams an answer."""

from __future__ import annotations

import json
import time

import pytest

from serve.auth.protocol import Role
from tests.serve.cdp import PipeBrowser, find_chromium
from tests.serve.live import LiveServer

pytestmark = pytest.mark.browser


def test_chat_page_streams_an_answer_with_local_assets_only(fuzz_server: LiveServer) -> None:
    executable = find_chromium()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    browser = PipeBrowser(executable)
    try:
        session = browser.open_page()
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": f"{fuzz_server.base_url}/"}, session)
        _wait(lambda: browser.evaluate(session, "document.readyState") == "complete", "page load")
        _wait(lambda: browser.evaluate(session, "!!document.getElementById('send')"), "page script")
        key = json.dumps(fuzz_server.keys[Role.clinician])
        browser.evaluate(session, f"document.getElementById('api-key').value = {key}")
        browser.evaluate(session, "document.getElementById('prompt').value = 'Name a symptom of asthma.'")
        browser.evaluate(session, "document.getElementById('send').click()")
        state = "document.querySelector('#messages li.assistant')?.dataset.state"
        _wait(lambda: browser.evaluate(session, state) in ("done", "error"), "the answer")
        status = browser.evaluate(session, "document.getElementById('status').textContent")
        assert browser.evaluate(session, state) == "done", status
        answer = browser.evaluate(session, "document.querySelector('#messages li.assistant').textContent")
        assert answer.strip(), "the streamed answer is shown"
        assert browser.evaluate(session, "document.getElementById('model').textContent") == fuzz_server.model_id

        urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
        assert any(u.endswith("/static/app.js") for u in urls) and any(u.endswith("/static/style.css") for u in urls)
        outside = [u for u in urls if not u.startswith(fuzz_server.base_url) and not u.startswith(("data:", "about:"))]
        assert outside == [], "every asset is served by the appliance itself"
        errors = [e for e in browser.events if e.get("method") == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error"]
        assert errors == [], "no console errors, CSP violations included"
    finally:
        browser.close()


def _wait(condition, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001 - a plain callable
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
