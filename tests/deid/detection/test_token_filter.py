"""The learned per-word filter: its features generalise, its spans are tight, the shipped model behaves."""

from __future__ import annotations

import pytest

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.token_features import FeatureExtractor, shape_of
from deid.detection.token_filter import TokenFilter, TokenModel
from deid.recognizers.base import NoteStyle
from deid.recognizers.lexicon import Lexicon
from tests.deid.detection.conftest import touched


def test_shape_folds_runs_of_case_and_digits() -> None:
    assert shape_of("Okafor") == "Xx"
    assert shape_of("ICU") == "X"
    assert shape_of("q2h") == "xdx"
    assert shape_of("1987") == "d"


def test_an_unlisted_word_never_becomes_a_feature_by_its_spelling(lexicon: Lexicon) -> None:
    """A model fit on real notes must not be able to memorise a name: only public words appear."""
    extractor = FeatureExtractor(lexicon)
    text = "Seen by Dr. Zorvathek today, wife Quilanna at bedside."
    spans, rows, _ = extractor.features(text, NoteStyle.MIXED, [])
    features = " ".join(feature for row in rows for feature in row).lower()
    assert "zorvathek" not in features and "quilanna" not in features
    words = [text[start:end] for start, end in spans]
    assert "w=wife" in rows[words.index("wife")]  # a public word is a feature by its spelling
    assert "c-1=dr" in rows[words.index("Zorvathek")]  # and so is public context


def test_the_shipped_model_loads() -> None:
    model = TokenModel.load()
    assert 0.0 < model.threshold < 1.0
    assert len(model.weights) > 1000
    assert TokenModel.from_json(model.to_json()).weights == model.weights


def test_a_malformed_model_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenModel.from_json({"format": 99, "bias": 0.0, "threshold": 0.5, "weights": {}})


@pytest.fixture(scope="module")
def filtered() -> PhiDetector:
    detector = PhiDetector(DeidConfig(token_filter=True))
    assert detector.token_filter is not None
    return detector


def test_clinical_shorthand_is_dropped(filtered: PhiDetector) -> None:
    text = (
        "Neuro: A&Ox3, MAE. CV: NSR, occ PVCs, no ectopy. Resp: LS coarse, suctioned for thick tan sputum. "
        "Lines: R IJ TLC, L radial aline, PIV x2. GU: foley draining amber urine 40cc/hr. "
        "GI: abd soft, TF at goal. Flowsheet and careview updated. Plan: cont lasix, monitor lytes."
    )
    spans = filtered.detect(text)
    for word in ("aline", "amber", "tan", "careview", "Flowsheet", "foley", "PVCs", "TLC"):
        assert not touched(text, spans, word), word


def test_a_planted_name_in_context_is_kept_without_its_title(filtered: PhiDetector) -> None:
    text = "Wife Marisol called at 1400, updated on plan. Dr. Okafor aware of K 3.1, repleted."
    spans = filtered.detect(text)
    assert touched(text, spans, "Marisol")
    assert touched(text, spans, "Okafor")
    assert not touched(text, spans, "Dr."), "the title stays outside the name span"
    assert not touched(text, spans, "Wife")


def test_kept_words_join_into_one_span_across_short_separators(lexicon: Lexicon) -> None:
    """A model that keeps every word shows how runs form: '7/22' is one date, a line break or a type change splits."""
    keep_all = TokenFilter(lexicon, TokenModel(bias=5.0, weights={}, threshold=0.5))
    text = "seen 7/22\nnext"
    results = keep_all.apply(text, [])
    covered = sorted((text[r.start : r.end]) for r in results)
    assert covered == ["7/22", "next", "seen"]
    assert all(r.score >= 0.5 for r in results)


def test_structured_identifiers_pass_through_whatever_the_model_says(lexicon: Lexicon) -> None:
    detector = PhiDetector(DeidConfig())
    drop_all = TokenFilter(lexicon, TokenModel(bias=-50.0, weights={}, threshold=0.5))
    text = "Send the report to okafor.team@example.org today."
    results = drop_all.apply(text, detector.candidates(text))
    assert [text[r.start : r.end] for r in results] == ["okafor.team@example.org"]


def test_switching_the_filter_off_gives_the_rules_alone() -> None:
    detector = PhiDetector(DeidConfig())
    assert detector.token_filter is None
    text = "Daughter Marisol Okafor called on 7/22/2019."
    assert touched(text, detector.detect(text), "Marisol")
