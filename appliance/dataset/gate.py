"""The PHI gate: re-scan the built set with the de-identification detector before release.

In surrogate mode deid replaces PHI with realistic fakes and shifts dates, so a re-scan finds
those fakes again. ``deid run`` leaves a registry of digests of every fake it wrote (see
:mod:`deid.surrogate_registry`); a detection is deid's own fake when the text around it is
made of registered fakes, otherwise it is residual PHI. Matching works on the text, not on
counts, so it does not care whether the detector splits or merges spans differently in the
fake text than it did in the original, nor which fakes a keystore happened to pick.

A corpus without a registry (an older run, a hand-made corpus) gets no allowance: every
detection counts. Only counts by type leave this module, never text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.dataset.recipes import Example
from deid.anonymize.surrogates import TITLES
from deid.detection.spans import DetectedSpan
from deid.errors import GateError
from deid.run.publish import STATE_DIR
from deid.surrogate_registry import digest, load_registry, normalize, registry_path

if TYPE_CHECKING:
    from deid.detection.engine import PhiDetector

# Words that sit between or around fakes without being PHI themselves: the titles and relation
# words the name anonymizer keeps as they are, a possessive "s", and joiners ("Mary of Jones").
CONNECTORS = TITLES | frozenset({"of", "and", "the", "s"})
# Longest fake, in tokens, looked for around a detection ("1234 Smith Springs Apt. 5, Port Jessica").
WIDEST_SURROGATE = 10
# Letters and digits are separate tokens: Synthea-style "Stevens729" is a fake "Stevens" and a number.
_TOKEN = re.compile(r"\+?(?:[^\W\d_]+|\d+)\+?")


def load_surrogates(deid_dir: Path) -> frozenset[str] | None:
    """The registry of the ``deid run`` output that holds the corpus: the corpus folder itself,
    or the output folder a single file or a sub-folder of it was taken from."""
    start = deid_dir.resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        path = registry_path(folder / STATE_DIR)
        if path.is_file():
            return load_registry(path)
    return None


def accounted_for(text: str, tokens: Sequence[tuple[int, int]], span: DetectedSpan, registry: frozenset[str]) -> bool:
    """True when the detection lies in a stretch of text covered by registered fakes and
    connector words, with at least one registered fake overlapping it.

    A stretch is tiled left to right: each tile is either a registered fake (one or more whole
    tokens, which may reach past the detection's edges: "2" of a fake "March 2, 2021") or one
    connector word. A real name that deid missed is not registered, so a detection holding it
    cannot be tiled, whatever titles surround it.
    """
    if digest(text[span.start : span.end]) in registry:
        return True
    inside = [i for i, (start, end) in enumerate(tokens) if end > span.start and start < span.end]
    if not inside:
        return False
    first, last = inside[0], inside[-1]
    low, high = max(0, first - WIDEST_SURROGATE + 1), min(len(tokens), last + WIDEST_SURROGATE)
    # reached[p]: tokens before p are tiled; the value says whether a registered tile touched the span
    reached: dict[int, bool] = dict.fromkeys(range(low, first + 1), False)
    for p in range(low, high):
        if p not in reached:
            continue
        hit = reached[p]
        for q in range(p + 1, min(p + WIDEST_SURROGATE, high) + 1):
            window = text[tokens[p][0] : tokens[q - 1][1]]
            if digest(window) in registry:
                touched = hit or (p <= last and q - 1 >= first)
            elif q == p + 1 and normalize(window) in CONNECTORS:
                touched = hit
            else:
                continue
            if q > last and touched:
                return True
            reached[q] = reached.get(q, False) or touched
    return False


@dataclass
class GateReport:
    examples: int = 0
    words: int = 0
    detected: int = 0
    registry: bool = False
    surrogates: int = 0
    spans_by_type: dict[str, int] = field(default_factory=dict)
    # Detections accounted for as deid's own fakes, by type: a reviewer sees whether the
    # allowance went to dates (shifted dates often equal other real dates) or to names.
    surrogates_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def spans(self) -> int:
        return sum(self.spans_by_type.values())

    @property
    def per_1k_tokens(self) -> float:
        return 1000.0 * self.spans / self.words if self.words else 0.0

    def details(self) -> dict[str, object]:
        return {
            "examples_scanned": self.examples,
            "words_scanned": self.words,
            "surrogate_registry": self.registry,
            "detected_spans": self.detected,
            "surrogate_spans": self.surrogates,
            "surrogate_by_type": dict(sorted(self.surrogates_by_type.items())),
            "residual_spans": self.spans,
            "residual_per_1k_tokens": round(self.per_1k_tokens, 4),
            "residual_by_type": dict(sorted(self.spans_by_type.items())),
        }


def scan(examples: Sequence[Example], detector: PhiDetector, registry: frozenset[str] | None) -> GateReport:
    """Residual detections per type; words stand in for tokens (there is no tokenizer here)."""
    texts = [example.content() for example in examples]
    report = GateReport(examples=len(texts), words=sum(len(text.split()) for text in texts), registry=registry is not None)
    if not texts:
        return report
    residual: Counter[str] = Counter()
    accounted: Counter[str] = Counter()
    for text, spans in zip(texts, detector.detect_many(texts), strict=True):
        report.detected += len(spans)
        tokens = [match.span() for match in _TOKEN.finditer(text)] if registry and spans else []
        for span in spans:
            if registry and accounted_for(text, tokens, span, registry):
                report.surrogates += 1
                accounted[span.entity_type] += 1
            else:
                residual[span.entity_type] += 1
    report.spans_by_type = dict(residual)
    report.surrogates_by_type = dict(accounted)
    return report


def enforce(report: GateReport, threshold_per_1k: float) -> None:
    if report.per_1k_tokens > threshold_per_1k:
        by_type = ", ".join(f"{name}: {count}" for name, count in sorted(report.spans_by_type.items()))
        raise GateError(
            f"PHI gate refused the dataset: {report.spans} residual PHI spans in {report.examples} examples "
            f"({report.per_1k_tokens:.2f} per 1k tokens > threshold {threshold_per_1k}); by type: {by_type}"
        )
