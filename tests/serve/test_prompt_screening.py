"""Prompt screening does not serialise clinicians: a short prompt is screened while a long one runs.

Real detector, real threads. With ``concurrency=1`` the same short prompt has to wait for the
long one, which shows the bound is real and that the first test measures what it claims.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from serve.privacy.service import PromptPrivacy, Screened

SENTENCE = "Pt seen by Dr. Okafor on 03/14/2021, BP 120/80, HR 88, daughter Maria to call 617-555-0143. "
LONG = SENTENCE * 1200  # about 110,000 characters: seconds of detection
SHORT = "Maria Quackenbush, born 04/12/1961, has a cough."


@pytest.fixture(scope="module")
def detector() -> PhiDetector:
    return PhiDetector(DeidConfig())


def screen_short_while_long_runs(privacy: PromptPrivacy) -> tuple[float, float]:
    """(when the short prompt finished, when the long one finished), seconds from the start."""
    started = time.perf_counter()
    long_running = threading.Event()

    def long_screen() -> float:
        long_running.set()
        privacy.screen([LONG])
        return time.perf_counter() - started

    with ThreadPoolExecutor(2) as pool:
        long_done = pool.submit(long_screen)
        long_running.wait()
        time.sleep(0.2)  # the long screening holds its slot by now
        short = privacy.screen([SHORT])
        short_done = time.perf_counter() - started
        assert "DATE" in short.phi_types
        return short_done, long_done.result()


@pytest.mark.timeout(300)
def test_short_prompt_is_not_held_behind_a_long_one(detector: PhiDetector) -> None:
    short_done, long_done = screen_short_while_long_runs(PromptPrivacy(detector, redact_prompts=False))
    assert short_done < long_done


@pytest.mark.timeout(300)
def test_one_slot_makes_the_short_prompt_wait(detector: PhiDetector) -> None:
    short_done, long_done = screen_short_while_long_runs(PromptPrivacy(detector, redact_prompts=False, concurrency=1))
    assert short_done >= long_done


@pytest.mark.timeout(300)
def test_concurrent_screenings_match_one_at_a_time(detector: PhiDetector) -> None:
    privacy = PromptPrivacy(detector, redact_prompts=True)
    prompts = [[f"{SENTENCE} Visit {index}: Mr. Lindqvist, MRN 4041{index:04d}."] for index in range(24)]
    alone: list[Screened] = [privacy.screen(prompt) for prompt in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(privacy.screen, prompts))
    assert together == alone
    assert all("617-555-0143" not in screened.texts[0] for screened in together)


def test_concurrency_must_be_positive(detector: PhiDetector) -> None:
    with pytest.raises(ValueError):
        PromptPrivacy(detector, redact_prompts=False, concurrency=0)
