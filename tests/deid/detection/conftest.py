"""One detector and one lexicon per test session: building them costs seconds."""

from __future__ import annotations

import pytest

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.recognizers.lexicon import Lexicon


@pytest.fixture(scope="session")
def detector() -> PhiDetector:
    return PhiDetector(DeidConfig())


@pytest.fixture(scope="session")
def lexicon(detector: PhiDetector) -> Lexicon:
    return detector.lexicon


def covered(text: str, spans: list, fragment: str) -> bool:
    """Is every character of ``fragment`` (first occurrence) inside some span?"""
    start = text.index(fragment)
    return all(any(s.start <= i < s.end for s in spans) for i in range(start, start + len(fragment)))


def touched(text: str, spans: list, fragment: str) -> bool:
    """Does any span overlap ``fragment`` (first occurrence)?"""
    start = text.index(fragment)
    end = start + len(fragment)
    return any(s.start < end and s.end > start for s in spans)
