"""Adversarial text: detection finishes, and PHI planted inside or after it is found at its true offsets.

Timing targets live in ``bench/deid_adversarial.py``; here a generous timeout only stops a
regression from hanging the suite. Before the guard and the pattern fixes, the inputs below
took from tens of seconds to many minutes each.
"""

from __future__ import annotations

import random

import pytest

from deid.detection.engine import PhiDetector
from deid.detection.guard import RUN_KEPT, compact, restore, tokenizer_text
from deid.detection.spans import DetectedSpan
from tests.deid.detection.conftest import covered

RUN = 6000
PLANTED = "Pt seen by Dr. Okonkwo on 03/14/2021, daughter to call 617-555-0143. MRN: 40417823."
PHI = ("Okonkwo", "03/14/2021", "617-555-0143", "40417823")

# Separator runs and alternations that made recognizer patterns or spaCy's tokenizer backtrack.
SEPARATOR_RUNS = [" ", "\t", ":", ",", "-", "_", "#", "(", " \t", ", \t", ".", "\u00a0"]
# Text that looks like the start of PHI over and over, or one token that never ends.
LOOKALIKE_RUNS = ["1-", "-1", "12:", "1,", "A", "Ab", "Smith ", "Dr. ", "Жук "]


def run_of(unit: str, length: int = RUN) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def shifted(spans: list[DetectedSpan], offset: int) -> list[DetectedSpan]:
    return [DetectedSpan(s.start + offset, s.end + offset, s.entity_type, s.score) for s in spans]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("unit", SEPARATOR_RUNS, ids=repr)
def test_phi_between_separator_runs_is_found_exactly_as_alone(detector: PhiDetector, unit: str) -> None:
    before = run_of(unit) + "\n"
    text = before + PLANTED + "\n" + run_of(unit)
    alone = detector.detect(PLANTED)
    assert all(covered(PLANTED, alone, value) for value in PHI)
    found = detector.detect(text)
    planted = [span for span in found if span.start >= len(before) - 1 and span.end <= len(before) + len(PLANTED) + 1]
    assert planted == shifted(alone, len(before))
    for span in found:
        assert 0 <= span.start < span.end <= len(text)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("unit", LOOKALIKE_RUNS, ids=repr)
def test_phi_after_lookalike_runs_is_found(detector: PhiDetector, unit: str) -> None:
    text = run_of(unit) + "\n\n" + PLANTED
    found = detector.detect(text)
    offset = text.index(PLANTED)
    for value in PHI:
        start = offset + PLANTED.index(value)
        assert any(s.start <= start and s.end >= start + len(value) for s in found), value
    for span in found:
        assert 0 <= span.start < span.end <= len(text)


@pytest.mark.timeout(300)
def test_detect_many_maps_offsets_like_detect(detector: PhiDetector) -> None:
    texts = [run_of(" ") + PLANTED, PLANTED + run_of(":") + PLANTED, run_of("1-") + PLANTED, PLANTED]
    assert detector.detect_many(texts) == [detector.detect(text) for text in texts]


def test_a_span_across_a_shortened_run_covers_the_whole_run() -> None:
    text = "Name: Ann" + " " * 50 + "Lee, seen 03/14."
    view = compact(text)
    assert len(view.text) == len(text) - (50 - RUN_KEPT)
    whole = view.text.index("Ann"), view.text.index("Lee") + 3
    (span,) = restore([DetectedSpan(*whole, "PATIENT", 0.9)], view)
    assert text[span.start : span.end] == "Ann" + " " * 50 + "Lee"
    start = view.text.index("Lee")
    (after,) = restore([DetectedSpan(start, start + 3, "PATIENT", 0.9)], view)
    assert text[after.start : after.end] == "Lee"
    end = view.text.index("Ann") + 3 + RUN_KEPT
    (before,) = restore([DetectedSpan(view.text.index("Ann"), end, "PATIENT", 0.9)], view)
    assert text[before.start : before.end] == "Ann" + " " * RUN_KEPT


def test_compaction_keeps_letters_and_digits_and_maps_every_character_back() -> None:
    rng = random.Random(13)
    pieces = ["a", "7", " ", ":", "-" * 40, " " * 30, "\n" * 20, "1" * 40, "Dr. ", "_" * 17]
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        view = compact(text)
        assert "1" * 40 not in text or "1" * 40 in view.text
        for index, character in enumerate(view.text):
            assert text[view.start(index)] == character
            assert text[view.end(index + 1) - 1] == character
        assert len(tokenizer_text(text)) == len(text)


def test_tokenizer_text_breaks_only_long_chunks() -> None:
    text = "short words stay " + ":" * 200 + " end"
    broken = tokenizer_text(text)
    assert len(broken) == len(text)
    assert broken.startswith("short words stay ") and broken.endswith(" end")
    assert max(len(chunk) for chunk in broken.split()) <= 64
    assert tokenizer_text("nothing long here") == "nothing long here"
