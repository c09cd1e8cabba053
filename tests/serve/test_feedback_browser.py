"""The chat page's thumbs in Debian's real headless chromium: a thumbs-down with a correction reaches /v1/feedback."""

from __future__ import annotations

import sqlite3

import pytest

from serve.feedback.service import store_path
from tests.serve.cdp import PipeBrowser
from tests.serve.live import LiveServer
from tests.serve.test_browser import _ask, _assert_local_and_clean, _wait, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
RATING_STATE = "document.querySelector('#messages li.rating')?.dataset.state"


def test_thumbs_down_with_a_correction_is_stored(browser: PipeBrowser, main_server: LiveServer) -> None:  # noqa: F811
    session = _ask(browser, main_server, "Name a symptom of asthma.")
    browser.evaluate(session, "document.querySelectorAll('#messages li.rating button.thumb')[1].click()")
    browser.evaluate(session, "document.querySelector('.correction textarea').value = 'Wheezing at night.'")
    browser.evaluate(session, "document.querySelector('.correction').requestSubmit()")
    _wait(lambda: browser.evaluate(session, RATING_STATE) in ("done", "error"), "the rating")
    note = browser.evaluate(session, "document.querySelector('.rating-note').textContent")
    assert browser.evaluate(session, RATING_STATE) == "done", note
    with sqlite3.connect(store_path(main_server.settings.home)) as db:
        rows = db.execute("SELECT rating, correction FROM feedback WHERE correction = 'Wheezing at night.'").fetchall()
    assert rows == [("down", "Wheezing at night.")]
    _assert_local_and_clean(browser, main_server)
