"""The learned per-word filter: its features generalise, its spans are tight, the shipped model behaves."""

from __future__ import annotations

import re

import pytest

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.presidio_api import RecognizerResult
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
    assert 0.0 < model.threshold <= model.add_threshold <= 1.0
    assert len(model.weights) > 1000
    assert TokenModel.from_json(model.to_json()).weights == model.weights


def test_a_malformed_model_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenModel.from_json({"format": 99, "bias": 0.0, "threshold": 0.5, "add_threshold": 0.5, "weights": {}})


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
    keep_all = TokenFilter(lexicon, TokenModel(bias=5.0, weights={}, threshold=0.5, add_threshold=0.5))
    text = "seen 7/22\nAnselm"
    results = keep_all.apply(text, [])
    covered = sorted((text[r.start : r.end]) for r in results)
    assert covered == ["7/22", "Anselm", "seen"]
    assert all(r.score >= 0.5 for r in results)


def test_function_words_tags_and_their_neighbours_are_never_added(lexicon: Lexicon) -> None:
    """Words no rule proposed: a function word, redact mode's own tags and the words beside them stay."""
    keep_all = TokenFilter(lexicon, TokenModel(bias=5.0, weights={}, threshold=0.5, add_threshold=0.5))
    text = "seen at home [DATE] with Anselm"
    covered = [text[r.start : r.end] for r in keep_all.apply(text, [])]
    assert covered == ["seen", "Anselm"]


def test_structured_identifiers_pass_through_whatever_the_model_says(lexicon: Lexicon) -> None:
    detector = PhiDetector(DeidConfig())
    drop_all = TokenFilter(lexicon, TokenModel(bias=-50.0, weights={}, threshold=0.5, add_threshold=0.5))
    text = "Send the report to okafor.team@example.org today."
    results = drop_all.apply(text, detector.candidates(text))
    assert [text[r.start : r.end] for r in results] == ["okafor.team@example.org"]


def test_the_filter_is_on_by_default_and_off_gives_the_rules_alone() -> None:
    assert PhiDetector(DeidConfig()).token_filter is not None
    detector = PhiDetector(DeidConfig(token_filter=False))
    assert detector.token_filter is None
    text = "Daughter Marisol Okafor called on 7/22/2019."
    assert touched(text, detector.detect(text), "Marisol")


def test_a_line_is_judged_the_same_whatever_the_other_lines_hold(lexicon: Lexicon) -> None:
    """Context stops at line breaks: separator runs, headings or pasted text elsewhere change nothing."""
    extractor = FeatureExtractor(lexicon)
    line = "Seen by Dr. Zorvathek, wife Quilanna at bedside."
    _, alone, _ = extractor.features(line, NoteStyle.MIXED, [])
    for other in ("-" * 50, "PLAN: CONT ABX", "called 617-555-0143 ::"):
        for text in (other + "\n" + line, line + "\n" + other, other + "\n" + line + "\n" + other):
            spans, rows, _ = extractor.features(text, NoteStyle.MIXED, [])
            offset = text.index(line)
            own = [row for (start, _), row in zip(spans, rows, strict=True) if offset <= start < offset + len(line)]
            assert own == alone, (other, text.index(line))


def test_words_of_any_script_are_one_word(lexicon: Lexicon) -> None:
    spans, _, _ = FeatureExtractor(lexicon).features("Stefanía Oddgeirsdóttir ² ٣", NoteStyle.MIXED, [])
    assert [end - start for start, end in spans] == [8, 14, 1, 1]


def candidate(start: int, end: int, entity: str) -> RecognizerResult:
    return RecognizerResult(
        entity_type=entity, start=start, end=end, score=0.6,
        recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "SomeRuleRecognizer"},
    )


def test_a_kept_span_takes_its_candidates_punctuation_but_not_its_words(lexicon: Lexicon) -> None:
    weights = {"r=SomeRuleRecognizer|PHONE": 10.0, "r=SomeRuleRecognizer|CLINICIAN": 10.0, "w=dr": -20.0}
    keep_proposed = TokenFilter(lexicon, TokenModel(bias=-5.0, weights=weights, threshold=0.5, add_threshold=0.5))
    text = "call (508) 555-0187 or Dr. Okafor"
    phone = candidate(text.index("("), text.index(" or"), "PHONE")
    name = candidate(text.index("Dr."), len(text), "CLINICIAN")
    covered = {text[r.start : r.end] for r in keep_proposed.apply(text, [phone, name])}
    assert "(508) 555-0187" in covered
    assert "Okafor" in covered and "Dr. Okafor" not in covered


def test_words_the_rules_proposed_as_two_spans_stay_two(lexicon: Lexicon) -> None:
    keep_all = TokenFilter(lexicon, TokenModel(bias=5.0, weights={}, threshold=0.5, add_threshold=0.5))
    text = "Boston 02114, apt 4B"
    first, second = candidate(0, 12, "LOCATION"), candidate(14, 20, "LOCATION")
    covered = sorted(text[r.start : r.end] for r in keep_all.apply(text, [first, second]))
    assert covered == ["Boston 02114", "apt 4B"]
    joined = sorted(text[r.start : r.end] for r in keep_all.apply(text, [candidate(0, 20, "LOCATION")]))
    assert joined == ["Boston 02114, apt 4B"]


# Feature names are made of these besides vocabulary words: shapes, list flags, value ranges,
# position marks, styles, recognizer and entity names, scores.
FEATURE_GRAMMAR = re.compile(
    r"[Xxd]+|[FLCKDPS]+|unknown|none|num\d?|year4|time4|long|zero|le\d\d|all|some|no|NL|[BIESM]|mixed|upper|lower"
    r"|\w*Recognizer|[A-Z_]+|\d+"
)


def test_the_shipped_model_names_no_word_outside_the_public_vocabulary(lexicon: Lexicon) -> None:
    """The weights were fit on GPL notes: every word in a feature name must come from a shipped public list."""
    vocabulary = lexicon.common_words | lexicon.clinical_terms | lexicon.stop_words
    strangers = set()
    for name in TokenModel.load().weights:
        value = name.split("=", 1)[1]
        for word in re.findall(r"[^\W_]+", value):
            if word not in vocabulary and not FEATURE_GRAMMAR.fullmatch(word):
                strangers.add(word)
    assert not strangers, sorted(strangers)[:20]
