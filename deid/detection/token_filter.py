"""The learned filter: keeps or drops each word the rule recognizers propose, and adds words they missed.

Rules written against one hospital's notes do not carry over to another's: on real ICU nursing
notes they took clinical shorthand for names and missed hospital initials and bare dates. The
rules therefore act as generous candidate generators, and a logistic model over the generic
features of ``deid.detection.token_features`` decides word by word. Working per word keeps span
boundaries tight ("Dr." and "HOSPITAL" stay outside the name) and lets strong context flag a word
no rule proposed.

Structured identifiers whose patterns hardly ever misfire (e-mail, URL, SSN, IP, labelled ids,
vehicle ids, ages over 89), the site's own terms and the patient's known values pass through
unfiltered: real notes have too few of them to learn from, and they need no second opinion.

The weights ship as ``deid/recognizers/data/token_filter.json``; ``bench/deid_cv.py`` fits them
and measures them out of fold. The file holds feature weights only, no note text.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.detection.entities import TAG_WORDS, Entity
from deid.detection.presidio_api import AnalysisExplanation, RecognizerResult
from deid.detection.token_features import TOKEN, FeatureExtractor
from deid.recognizers.base import note_style
from deid.recognizers.lexicon import Lexicon

MODEL_FILE = "token_filter.json"
FILTER_NAME = "TokenFilter"
PASS_THROUGH = frozenset({
    "KnownPhiRecognizer", "SiteTermsRecognizer", "EmailRecognizer", "UrlRecognizer", "SsnRecognizer",
    "IpAddressRecognizer", "LabeledIdRecognizer", "VehicleRecognizer", "AgeOver89Recognizer",
})
# Words the filter keeps are reported at 0.5 + p/2, so any kept word clears the rule threshold.
KEPT_SCORE_FLOOR = 0.5
# Kept words separated by at most this many characters (no line break) form one span ("7/22"),
# unless the rules proposed them as two different spans.
MAX_JOIN_GAP = 3


@dataclass(frozen=True)
class TokenModel:
    """A logistic model over feature strings: weights by name, a bias and two decision thresholds.

    ``threshold`` keeps a word some rule proposed; ``add_threshold`` adds a word no rule proposed,
    which needs stronger evidence (there are a hundred times more of them, and few are PHI).
    """

    bias: float
    weights: dict[str, float]
    threshold: float
    add_threshold: float

    def probabilities(self, rows: Sequence[Sequence[str]]) -> list[float]:
        weights = self.weights
        out = []
        for row in rows:
            z = self.bias + sum(weights.get(feature, 0.0) for feature in row)
            out.append(1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0)
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "format": 2,
            "bias": round(self.bias, 5),
            "threshold": round(self.threshold, 4),
            "add_threshold": round(self.add_threshold, 4),
            "weights": {name: round(value, 5) for name, value in sorted(self.weights.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenModel:
        if data.get("format") != 2:
            raise ValueError("unsupported token filter model format")
        weights = data["weights"]
        if not isinstance(weights, dict):
            raise ValueError("token filter model has no weight table")
        return cls(
            float(data["bias"]),
            {str(k): float(v) for k, v in weights.items()},
            float(data["threshold"]),
            float(data["add_threshold"]),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> TokenModel:
        """The shipped model, or one written by ``bench/deid_cv.py --write``."""
        if path is None:
            resource = importlib.resources.files("deid.recognizers") / "data" / MODEL_FILE
            return cls.from_json(json.loads(resource.read_text(encoding="utf-8")))
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


class TokenFilter:
    def __init__(self, lexicon: Lexicon, model: TokenModel) -> None:
        self.extractor = FeatureExtractor(lexicon)
        self.model = model

    def apply(self, text: str, candidates: Sequence[RecognizerResult]) -> list[RecognizerResult]:
        """The pass-through results plus one result per run of kept words."""
        kept = [r for r in candidates if _recognizer(r) in PASS_THROUGH]
        spans, rows, covering = self.extractor.features(text, note_style(text), candidates)
        probabilities = self.model.probabilities(rows)
        return kept + self.runs(text, spans, probabilities, covering, self.model.threshold, self.model.add_threshold)

    def runs(
        self,
        text: str,
        spans: Sequence[tuple[int, int]],
        probabilities: Sequence[float],
        covering: Sequence[Sequence[tuple[RecognizerResult, str]]],
        threshold: float,
        add_threshold: float,
    ) -> list[RecognizerResult]:
        """Kept words joined into spans, each typed by its strongest covering candidate.

        Words inside a pass-through result are left to it: an e-mail address stays one EMAIL
        span instead of a DATE or PATIENT span over one of its words winning the merge.
        """
        results: list[RecognizerResult] = []
        run: list[int] = []
        run_type = ""
        for index, ((start, end), p) in enumerate(zip(spans, probabilities, strict=True)):
            if p < (threshold if covering[index] else add_threshold):
                continue
            if any(_recognizer(result) in PASS_THROUGH for result, _ in covering[index]):
                continue  # a pass-through result already speaks for this word, with its own type and span
            if not covering[index] and text[start:end].lower() in self.extractor.lexicon.stop_words:
                continue  # no rule proposed it and it is a function word ("at", "the"): never PHI on its own
            if _is_redaction_tag(text, start, end):
                continue  # redact mode's own output ([NAME], [DATE]...) read again by the dataset's PHI gate
            if not covering[index] and _next_to_tag(text, spans, index):
                # The model never saw a tag in its notes and reads one as an unknown capitalised word,
                # so its context misleads: beside a tag, only what a rule proposed is kept.
                continue
            entity = _entity_for(text[start:end], covering[index], run_type if run else "")
            if run:
                gap = text[spans[run[-1]][1] : start]
                split = index != run[-1] + 1 or entity != run_type or len(gap) > MAX_JOIN_GAP or "\n" in gap
                if split or _separate_candidates(covering[run[-1]], covering[index]):
                    results.append(self._result(text, spans, probabilities, covering, run, run_type))
                    run = []
            run.append(index)
            run_type = entity
        if run:
            results.append(self._result(text, spans, probabilities, covering, run, run_type))
        return results

    @staticmethod
    def _result(
        text: str,
        spans: Sequence[tuple[int, int]],
        probabilities: Sequence[float],
        covering: Sequence[Sequence[tuple[RecognizerResult, str]]],
        run: list[int],
        entity: str,
    ) -> RecognizerResult:
        """One span over the run, widened to the punctuation its rule candidate had: "(508) 555-0187"."""
        start, end = spans[run[0]][0], spans[run[-1]][1]
        for result, _ in covering[run[0]]:
            if result.entity_type == entity and result.start < start and not _has_word(text[result.start : start]):
                start = result.start
        for result, _ in covering[run[-1]]:
            if result.entity_type == entity and result.end > end and not _has_word(text[end : result.end]):
                end = result.end
        score = KEPT_SCORE_FLOOR + max(probabilities[k] for k in run) / 2
        return RecognizerResult(
            entity_type=entity,
            start=start,
            end=end,
            score=score,
            analysis_explanation=AnalysisExplanation(recognizer=FILTER_NAME, original_score=score),
            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: FILTER_NAME},
        )


def _separate_candidates(
    left: Sequence[tuple[RecognizerResult, str]], right: Sequence[tuple[RecognizerResult, str]]
) -> bool:
    """Both words were proposed, but by different candidates: the rules saw two spans ("Boston 02114", "apt 4B")."""
    return bool(left) and bool(right) and not any(a is b for a, _ in left for b, _ in right)


def _has_word(gap: str) -> bool:
    return TOKEN.search(gap) is not None


def _recognizer(result: RecognizerResult) -> str:
    metadata = result.recognition_metadata or {}
    return str(metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY, ""))


def _entity_for(word: str, covering: Sequence[tuple[RecognizerResult, str]], run_type: str) -> str:
    """The strongest covering candidate's type; without one, a number is a date, a word takes the run's type."""
    rules = [result for result, _ in covering if _recognizer(result) not in PASS_THROUGH]
    if rules:
        return max(rules, key=lambda result: result.score).entity_type
    if any(c.isdigit() for c in word):
        return Entity.DATE.value
    if run_type:
        return run_type
    if word.isupper() and len(word) <= 4:
        return Entity.HOSPITAL.value
    return Entity.PATIENT.value


_TAG_WINDOW = 200
_TAG_PIECE = re.compile(r"[(\"']*\[(?P<word>[A-Z_]+)\][.,;:!?)\"']*")


def _is_redaction_tag(text: str, start: int, end: int) -> bool:
    return text[start:end] in TAG_WORDS and text[start - 1 : start] == "[" and text[end : end + 1] == "]"


def _next_to_tag(text: str, spans: Sequence[tuple[int, int]], index: int) -> bool:
    """Whether the whitespace-separated piece before or after this word's own piece, on its line, is a tag.

    Looks at most ``_TAG_WINDOW`` characters each way, so the check stays constant per word.
    """
    start, end = spans[index]
    before = text[max(0, start - _TAG_WINDOW) : start].rsplit("\n", 1)[-1]
    after = text[end : end + _TAG_WINDOW].split("\n", 1)[0]
    previous = before.split()[-2:] if before and not before[-1].isspace() else before.split()[-1:]
    following = after.split()[1:2] if after and not after[0].isspace() else after.split()[:1]
    # with the word's own piece going on past it ("[DATE] y/o,"), the neighbour is the piece before that
    neighbours = previous[:1] if len(previous) == 2 else previous
    return any(_TAG_PIECE.fullmatch(piece) for piece in [*neighbours, *following])
