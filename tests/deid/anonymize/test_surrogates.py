"""Keyed surrogates: consistent per scope, different under another key, realistic and format-true."""

from __future__ import annotations

import re

from deid.anonymize.operators import CORPUS_SCOPE, Anonymizer, merge_overlaps
from deid.anonymize.surrogates import SurrogateFactory
from deid.config import AnonymizationMode, DeidConfig
from deid.detection.spans import DetectedSpan

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def factory(key: bytes = KEY) -> SurrogateFactory:
    return SurrogateFactory(key, date_shift_max_days=365)


def test_same_name_same_patient_same_fake_and_parts_agree() -> None:
    fakes = factory()
    full = fakes.name("Margaret O'Connell", "patient:1")
    assert full == fakes.name("Margaret O'Connell", "patient:1")
    assert full != "Margaret O'Connell" and "O'Connell" not in full
    surname = full.split()[-1]
    assert fakes.name("Mrs. O'Connell", "patient:1") == f"Mrs. {surname}"
    assert fakes.name("Denis399", "patient:1") == fakes.name("Denis", "patient:1")


def test_key_and_patient_change_the_fake() -> None:
    names = ["Margaret O'Connell", "John Whitaker", "Rosa Delgado", "Peter Haldane"]
    keyed = [factory().name(n, "patient:1") for n in names]
    assert keyed != [factory(OTHER_KEY).name(n, "patient:1") for n in names]
    assert keyed != [factory().name(n, "patient:2") for n in names]


def test_case_style_titles_and_relations_are_kept() -> None:
    fakes = factory()
    upper = fakes.name("JOHN WHITAKER", "p")
    lower = fakes.name("john whitaker", "p")
    assert upper.isupper() and lower.islower() and upper.lower() == lower
    assert fakes.name("Dr. Okafor", "p").startswith("Dr. ")
    assert fakes.name("Son David", "p").startswith("Son ")
    assert re.fullmatch(r"[A-Z]\. [A-Z]+", fakes.name("K. LINDQVIST", "p"))


def test_identifiers_keep_their_format() -> None:
    fakes = factory()
    for real in ["00482913", "617-555-0143", "(508) 555-0187", "MRN-448812", "999-94-5397", "ab12-CD"]:
        fake = fakes.identifier(real, CORPUS_SCOPE)
        assert fake != real and len(fake) == len(real)
        for a, b in zip(real, fake, strict=True):
            assert a.isdigit() == b.isdigit() and a.isupper() == b.isupper() and a.islower() == b.islower()
            if not a.isalnum():
                assert a == b
        assert fakes.identifier(real, CORPUS_SCOPE) == fake


def test_resource_ids_stay_uuids_and_are_keyed() -> None:
    real = "129c6ac7-8d06-89de-ad63-0204a93e76c3"
    fake = factory().resource_id(real)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", fake)
    assert fake == factory().resource_id(real) != factory(OTHER_KEY).resource_id(real)


def test_date_offsets_are_per_patient_bounded_and_never_zero() -> None:
    fakes = SurrogateFactory(KEY, date_shift_max_days=30)
    offsets = {fakes.date_offset(f"patient:{i}") for i in range(200)}
    assert 0 not in offsets and all(-30 <= o <= 30 for o in offsets) and len(offsets) > 20
    assert fakes.date_offset("patient:7") == fakes.date_offset("patient:7")


def test_corpus_wide_consistency_is_a_setting() -> None:
    per_patient = Anonymizer(DeidConfig(), factory())
    corpus = Anonymizer(DeidConfig(consistent_across_corpus=True), factory())
    assert per_patient.replace("Peter Haldane", "PATIENT", "p1") != per_patient.replace("Peter Haldane", "PATIENT", "p2")
    assert corpus.replace("Peter Haldane", "PATIENT", "p1") == corpus.replace("Peter Haldane", "PATIENT", "p2")
    # a person keeps one fake whichever name type the detector gave the mention
    assert per_patient.replace("Peter Haldane", "CLINICIAN", "p1") == per_patient.replace("Peter Haldane", "PATIENT", "p1")


def test_text_surrogates_ages_dates_and_redaction() -> None:
    text = "Pt John Whitaker, 91 yo, seen 03/14/2021 by Dr. Okafor; call 617-555-0143."
    spans = [
        DetectedSpan(3, 16, "PATIENT", 0.9),
        DetectedSpan(18, 20, "AGE_OVER_89", 0.9),
        DetectedSpan(30, 40, "DATE", 0.9),
        DetectedSpan(44, 54, "CLINICIAN", 0.9),
        DetectedSpan(61, 73, "PHONE", 0.9),
    ]
    anonymizer = Anonymizer(DeidConfig(), factory())
    out, applied = anonymizer.text(text, spans, "p1")
    assert "Whitaker" not in out and "Okafor" not in out and "617-555-0143" not in out and "03/14/2021" not in out
    assert "90+ yo" in out and re.search(r"seen \d\d/\d\d/\d{4} by Dr\. \w+; call \d{3}-\d{3}-\d{4}\.$", out)
    assert [a.operator for a in applied] == ["surrogate", "age_cap", "shift", "surrogate", "format_preserve"]
    redacted, _ = Anonymizer(DeidConfig(mode=AnonymizationMode.redact), factory()).text(text, spans, "p1")
    assert redacted == "Pt [NAME], 90+ yo, seen [DATE] by [NAME]; call [PHONE]."


def test_unparseable_date_is_tagged_not_kept() -> None:
    out, applied = Anonymizer(DeidConfig(), factory()).text("on Christmas Eve", [DetectedSpan(3, 16, "DATE", 0.8)], "p")
    assert out == "on [DATE]" and applied[0].operator == "redact"


def test_overlapping_spans_merge_into_one_replacement() -> None:
    merged = merge_overlaps([DetectedSpan(0, 5, "PATIENT", 0.5), DetectedSpan(3, 12, "LOCATION", 0.9), DetectedSpan(20, 22, "ID", 1)])
    assert [(s.start, s.end, s.entity_type) for s in merged] == [(0, 12, "LOCATION"), (20, 22, "ID")]
