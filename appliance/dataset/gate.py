"""The PHI gate: re-scan the built set with the de-identification detector before release.

In surrogate mode deid replaces PHI with realistic fakes and shifts dates, so a re-scan finds
those fakes again: counting them as residual PHI would refuse every corpus. The ledger says,
per record, how many spans of each type deid replaced; an example cut from that record may
legitimately hold up to that many detections of each type. Everything beyond it is residual:
PHI that a field policy kept, or records that never went through deid at all (they have no
ledger entry, so every detection counts). Only counts by type leave this module, never text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance.dataset.recipes import Example
from appliance.errors import GateError
from deid.config import DeidConfig


@dataclass
class LedgerAllowances:
    """Per-record counts of spans that deid replaced, by output digest and by (file, record)."""

    by_digest: dict[str, Counter[str]] = field(default_factory=dict)
    by_key: dict[str, Counter[str]] = field(default_factory=dict)

    def for_document(self, key: str | None, digest: str | None) -> Counter[str] | None:
        if digest and digest in self.by_digest:
            return self.by_digest[digest]
        if key and key in self.by_key:
            return self.by_key[key]
        return None


def read_allowances(ledger: Path) -> LedgerAllowances:
    allowances = LedgerAllowances()
    if not ledger.is_file():
        return allowances
    with open(ledger, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("action") != "deid.document":
                continue
            payload = record.get("payload") or {}
            counts = Counter({str(k): int(v) for k, v in (payload.get("entity_counts") or {}).items()})
            if payload.get("output_sha256"):
                allowances.by_digest[str(payload["output_sha256"])] = counts
            if payload.get("source") and payload.get("record_id"):
                allowances.by_key[f"{payload['source']}#{payload['record_id']}"] = counts
    return allowances


@dataclass
class GateReport:
    examples: int = 0
    words: int = 0
    detected: int = 0
    tied_to_ledger: int = 0
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
            "examples_tied_to_ledger": self.tied_to_ledger,
            "words_scanned": self.words,
            "detected_spans": self.detected,
            "residual_spans": self.spans,
            "residual_per_1k_tokens": round(self.per_1k_tokens, 4),
            "residual_by_type": dict(sorted(self.spans_by_type.items())),
        }


def scan(examples: Sequence[Example], deid_config: DeidConfig, allowances: LedgerAllowances,
         digests: dict[str, str | None]) -> GateReport:
    """Residual detections per type; words stand in for tokens (there is no tokenizer here)."""
    from deid.detection.engine import PhiDetector

    texts = [example.content() for example in examples]
    report = GateReport(examples=len(texts), words=sum(len(text.split()) for text in texts))
    if not texts:
        return report
    residual: Counter[str] = Counter()
    for example, spans in zip(examples, PhiDetector(deid_config).detect_many(texts), strict=True):
        found = Counter(span.entity_type for span in spans)
        report.detected += sum(found.values())
        allowed = allowances.for_document(example.document, digests.get(example.document or ""))
        if allowed is not None:
            report.tied_to_ledger += 1
            found.subtract(allowed)
        residual.update({name: count for name, count in found.items() if count > 0})
    report.spans_by_type = dict(residual)
    return report


def enforce(report: GateReport, threshold_per_1k: float) -> None:
    if report.per_1k_tokens > threshold_per_1k:
        by_type = ", ".join(f"{name}: {count}" for name, count in sorted(report.spans_by_type.items()))
        raise GateError(
            f"PHI gate refused the dataset: {report.spans} residual PHI spans in {report.examples} examples "
            f"({report.per_1k_tokens:.2f} per 1k tokens > threshold {threshold_per_1k}); by type: {by_type}"
        )
