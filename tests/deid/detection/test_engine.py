"""PhiDetector end to end on clinical-style text: what it must find and what it must leave."""

from __future__ import annotations

import itertools

import pytest

from deid.detection.engine import PhiDetector
from deid.detection.entities import ALL_ENTITIES
from deid.detection.known_phi import KnownPhi
from tests.deid.detection.conftest import covered, touched

NURSING = (
    "NURSING NOTE 0700-1900\n"
    "PT IS A 91 YO MALE, JOHN WHITAKER, ADMITTED FROM GREENVIEW NURSING HOME ON 11/02/20.\n"
    "VS STABLE: HR 88, BP 132/76, RR 18, SAT 96% ON 2L NC. FOLEY DRAINING CLEAR YELLOW URINE. CV: IRREG.\n"
    "WIFE MARTHA AT BEDSIDE, CONTACT (508) 555-0187. SSN ON FILE 123-45-6789.\n"
    "PLAN: CONT ABX, REPEAT CXR IN AM. RN K. LINDQVIST, PAGER 4471."
)


def test_spans_sorted_non_overlapping_and_typed(detector: PhiDetector) -> None:
    spans = detector.detect(NURSING)
    assert spans == sorted(spans, key=lambda s: s.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert {s.entity_type for s in spans} <= set(ALL_ENTITIES)


@pytest.mark.parametrize(
    "fragment", ["91", "JOHN WHITAKER", "GREENVIEW NURSING HOME", "11/02/20", "MARTHA", "(508) 555-0187", "123-45-6789", "LINDQVIST", "4471"]
)
def test_all_caps_nursing_note_phi_found(detector: PhiDetector, fragment: str) -> None:
    assert covered(NURSING, detector.detect(NURSING), fragment)


@pytest.mark.parametrize("fragment", ["HR 88", "132/76", "96%", "2L NC", "FOLEY", "CV", "CXR", "ABX", "ON FILE"])
def test_all_caps_nursing_note_clinical_words_left(detector: PhiDetector, fragment: str) -> None:
    assert not touched(NURSING, detector.detect(NURSING), fragment)


def test_lowercase_telegraphic_note(detector: PhiDetector) -> None:
    text = "pt rosa delgado 94 yo f seen at home 1/5/23. daughter carmen present. lungs clear, o2 2l, lasix 20mg iv q12. today afebrile."
    spans = detector.detect(text)
    for fragment in ("rosa delgado", "94", "1/5/23", "carmen"):
        assert covered(text, spans, fragment), fragment
    for fragment in ("lungs clear", "o2", "lasix 20mg", "q12", "today", "afebrile"):
        assert not touched(text, spans, fragment), fragment


def test_known_phi_finds_unlisted_name_and_identifier(detector: PhiDetector) -> None:
    text = "zqxwv seen again; chart ref 448-812 reviewed, zqxwv agrees with plan."
    assert not touched(text, detector.detect(text), "zqxwv")
    known = [KnownPhi("Zqxwv Ytrr", "PATIENT"), KnownPhi("448812", "MRN")]
    spans = detector.detect(text, known)
    assert covered(text, spans, "zqxwv") and covered(text, spans, "448-812")
    assert any(s.entity_type == "MRN" for s in spans)


def test_known_phi_names_with_digits_are_whole(detector: PhiDetector) -> None:
    text = "Denis399 is a 5 year-old male. Denis399 has a history of sinusitis."
    spans = detector.detect(text, [KnownPhi("Denis399 Kuhn846", "PATIENT")])
    assert [text[s.start : s.end] for s in spans] == ["Denis399", "Denis399"]
    assert all(text[s.start : s.end] != "Deni" for s in detector.detect(text))


def test_detect_many_matches_detect(detector: PhiDetector) -> None:
    texts = [NURSING, "", "Seen by Dr. Okafor on March 3rd, 2021.", "no phi here, vss, cont current plan"]
    assert detector.detect_many(texts) == [detector.detect(text) for text in texts]
    assert detector.detect("") == []


def test_detector_never_loads_torch_or_transformers() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from deid.detection.engine import PhiDetector; PhiDetector().detect('Dr. Okafor 3/12/21');"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "[]"
