"""Scoring arithmetic on hand-built documents, and the Wilson interval against known values."""

from __future__ import annotations

import math

import pytest

from deid.detection.spans import DetectedSpan
from deid.evaluation.intervals import Rate, wilson
from deid.evaluation.scoring import GoldSpan, score

TEXT = "John Smith saw Mary Lee on 3/4 at home."


def spans(*items: tuple[int, int, str]) -> list[DetectedSpan]:
    return [DetectedSpan(start, end, entity, 1.0) for start, end, entity in items]


def at(fragment: str, label: str, text: str = TEXT) -> GoldSpan:
    start = text.index(fragment)
    return GoldSpan(start, start + len(fragment), label)


def test_token_and_span_figures_by_label_and_type() -> None:
    gold = [at("John Smith", "PT_NAME"), at("Mary Lee", "RELATIVE"), at("3/4", "DATE")]
    predicted = spans((0, 4, "PATIENT"), (15, 23, "PATIENT"), (TEXT.index("saw"), TEXT.index("saw") + 3, "PATIENT"))
    evaluation = score([(TEXT, gold, predicted)])
    assert (evaluation.documents, evaluation.tokens) == (1, 10)
    assert evaluation.token_recall == Rate(3, 6)  # John, Mary, Lee of John Smith Mary Lee 3 4
    assert evaluation.token_precision == Rate(3, 4)  # "saw" is wrong
    assert evaluation.span_recall == Rate(1, 3)  # only Mary Lee is wholly covered
    assert evaluation.span_precision == Rate(2, 3)
    assert evaluation.phi_token_share == Rate(6, 10)
    by_label = evaluation.by_label()
    assert by_label["PT_NAME"]["token_recall"] == Rate(1, 2)
    assert by_label["RELATIVE"]["span_recall"] == Rate(1, 1)
    assert by_label["DATE"]["token_recall"] == Rate(0, 2)
    assert evaluation.by_type()["PATIENT"]["token_precision"] == Rate(3, 4)


def test_type_disagreement_still_counts_as_found_and_overlaps_unite() -> None:
    text = "Dr. Okafor at Mercy General on 01/02/2020"
    gold = [at("Okafor", "HCP", text), at("Mercy General", "LOCATION", text), at("Mercy", "HOSPITAL", text)]
    predicted = spans((text.index("Okafor"), text.index("Okafor") + 6, "DATE"), (text.index("General"), len(text), "HOSPITAL"))
    evaluation = score([(text, gold, predicted)])
    assert evaluation.by_label()["HCP"]["token_recall"] == Rate(1, 1)
    # "Mercy" is under two overlapping gold spans: counted once, under the span that starts first
    assert sum(evaluation.gold_tokens.values()) == 3
    assert evaluation.by_label()["LOCATION"]["span_recall"] == Rate(0, 1)
    # the date-typed span is right (it overlaps gold); the HOSPITAL one covers 'on 01 02 2020' wrongly
    assert evaluation.by_type()["DATE"]["token_precision"] == Rate(1, 1)
    assert evaluation.by_type()["HOSPITAL"]["token_precision"] == Rate(1, 5)
    assert evaluation.by_type()["HOSPITAL"]["span_precision"] == Rate(1, 1)


def test_tokens_in_any_script_and_punctuation_only_spans() -> None:
    text = "Oddgeirsdóttir visited: --"
    gold = [GoldSpan(0, 14, "NAME"), GoldSpan(len(text) - 2, len(text), "OTHER")]
    evaluation = score([(text, gold, spans((0, 14, "PATIENT")))])
    assert evaluation.token_recall == Rate(1, 1)
    assert evaluation.span_recall == Rate(1, 1)  # the punctuation-only span has no token to find
    assert evaluation.gold_spans == 2


def test_many_documents_add_up() -> None:
    text = "Call 617-555-0143 now"
    gold = [at("617-555-0143", "PHONE", text)]
    found = spans((5, 17, "PHONE"))
    evaluation = score([(text, gold, found), (text, gold, []), ("nothing here", [], [])])
    assert evaluation.documents == 3
    assert evaluation.token_recall == Rate(3, 6)
    assert evaluation.token_precision == Rate(3, 3)
    assert evaluation.span_precision == Rate(1, 1)


def test_wilson_matches_known_values() -> None:
    low, high = wilson(0, 10)  # type: ignore[misc]
    assert low == 0.0 and math.isclose(high, 0.27753, abs_tol=1e-4)
    low, high = wilson(81, 263)  # type: ignore[misc]
    assert math.isclose(low, 0.2553, abs_tol=1e-3) and math.isclose(high, 0.3662, abs_tol=1e-3)
    low, high = wilson(10, 10)  # type: ignore[misc]
    assert math.isclose(low, 0.72247, abs_tol=1e-4) and high == 1.0
    assert wilson(0, 0) is None
    assert Rate(0, 0).as_dict() == {"hits": 0, "total": 0, "value": None, "low": None, "high": None}
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_intervals_narrow_as_samples_grow() -> None:
    widths = []
    for total in (20, 200, 2000):
        low, high = wilson(total * 9 // 10, total)  # type: ignore[misc]
        assert low < 0.9 < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
