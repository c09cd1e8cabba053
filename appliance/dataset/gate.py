"""The PHI gate: re-scan the built set with the de-identification detector before release.

De-identification is never perfect; this second pass measures what slipped through and
refuses a set whose residual rate is above the configured threshold. Only counts by entity
type leave this module, never the text that was found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from appliance.errors import GateError
from deid.config import DeidConfig


@dataclass
class GateReport:
    examples: int = 0
    words: int = 0
    spans_by_type: dict[str, int] = field(default_factory=dict)

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
            "residual_spans": self.spans,
            "residual_per_1k_tokens": round(self.per_1k_tokens, 4),
            "residual_by_type": dict(sorted(self.spans_by_type.items())),
        }


def scan(texts: Iterable[str], deid_config: DeidConfig) -> GateReport:
    """Count detector hits per entity type; words stand in for tokens (no tokenizer here)."""
    from deid.detection.engine import PhiDetector

    texts = list(texts)
    counts: Counter[str] = Counter()
    report = GateReport(examples=len(texts), words=sum(len(text.split()) for text in texts))
    if texts:
        for spans in PhiDetector(deid_config).detect_many(texts):
            counts.update(span.entity_type for span in spans)
    report.spans_by_type = dict(counts)
    return report


def enforce(report: GateReport, threshold_per_1k: float) -> None:
    if report.per_1k_tokens > threshold_per_1k:
        by_type = ", ".join(f"{name}: {count}" for name, count in sorted(report.spans_by_type.items()))
        raise GateError(
            f"PHI gate refused the dataset: {report.spans} residual PHI spans in {report.examples} examples "
            f"({report.per_1k_tokens:.2f} per 1k tokens > threshold {threshold_per_1k}); by type: {by_type}"
        )
