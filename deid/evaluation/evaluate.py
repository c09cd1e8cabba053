"""Scoring the detector on a gold file, and what of it may be printed or written to the ledger.

Everything that leaves this module is counts and rates: the gold file is identified by a keyed
hash of its bytes (someone holding a guessed copy cannot confirm it without the key), records by
nothing at all, bad lines by their line number. Detection runs in batches, so memory stays
bounded by the batch, not the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from deid.detection.spans import DetectedSpan
from deid.evaluation.gold import GoldDocument, read_gold
from deid.evaluation.intervals import Rate
from deid.evaluation.scoring import Evaluation, add_document
from deid.keystore import Keystore, keyed_hash
from deid.malformed import Malformed

if TYPE_CHECKING:
    from deid.config import DeidConfig
    from deid.ledger.config import LedgerConfig

EVALUATION_ACTION = "deid.evaluation"
# The keystore secret that keys gold-file hashes and sample ids: never the surrogate or document key.
EVALUATION_SECRET = "evaluation-id"
BATCH = 32
# Gold labels and predicted types beyond these fold into OTHER in the ledger; the report stays readable.
MAX_GROUPS = 60


class Detector(Protocol):
    def detect_many(self, texts: list[str]) -> list[list[DetectedSpan]]: ...


@dataclass
class GoldReport:
    evaluation: Evaluation
    malformed: list[Malformed] = field(default_factory=list)


def evaluate_gold(path: Path, detector: Detector) -> GoldReport:
    """Score ``detector`` on every well-formed line of ``path``; bad lines are listed, not scored."""
    report = GoldReport(Evaluation())
    batch: list[GoldDocument] = []

    def flush() -> None:
        found = detector.detect_many([document.text for document in batch]) if batch else []
        for document, spans in zip(batch, found, strict=True):
            add_document(report.evaluation, document.text, document.spans, spans)
        batch.clear()

    for item in read_gold(path):
        if isinstance(item, Malformed):
            report.malformed.append(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH:
            flush()
    flush()
    return report


def gold_hash(path: Path, secret: bytes) -> str:
    """A keyed hash of the gold file's bytes: which sample was scored, without a plain digest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 16):
            digest.update(block)
    return keyed_hash(secret, digest.hexdigest())


def _folded(groups: dict[str, dict[str, Rate]]) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """The largest groups by count, the rest summed into OTHER, as plain dicts."""
    ranked = sorted(groups.items(), key=lambda item: -max(rate.total for rate in item[1].values()))
    kept = dict(ranked[:MAX_GROUPS])
    rest = ranked[MAX_GROUPS:]
    if rest:
        names = {name for _, rates in rest for name in rates}
        other = kept.setdefault("OTHER", {})
        for name in names:
            base = other.get(name, Rate(0, 0))
            other[name] = Rate(
                base.hits + sum(rates[name].hits for _, rates in rest if name in rates),
                base.total + sum(rates[name].total for _, rates in rest if name in rates),
            )
    return {group: {name: rate.as_dict() for name, rate in rates.items()} for group, rates in sorted(kept.items())}


def metrics(evaluation: Evaluation) -> dict[str, object]:
    """The figures of an evaluation for ``--json``, files and the ledger (groups folded past ``MAX_GROUPS``)."""
    data = evaluation.as_dict()
    data["by_label"] = _folded(evaluation.by_label())
    data["by_type"] = _folded(evaluation.by_type())
    return data


def ledger_payload(
    report: GoldReport, *, gold_file_hash: str, settings_sha256: str, detector_version: str, rules_version: str
) -> dict[str, object]:
    """The typed ledger entry of one evaluation: counts, rates and hashes only."""
    return {
        "evaluation": metrics(report.evaluation),
        "documents": report.evaluation.documents,
        "malformed_count": len(report.malformed),
        "gold_hash": gold_file_hash,
        "settings_sha256": settings_sha256,
        "detector_version": detector_version,
        "rules_version": rules_version,
    }


def _cell(rate: Rate) -> str:
    bounds = rate.interval
    if bounds is None or rate.value is None:
        return f"{'-':>6} {'':>15} {rate.hits:>6}/{rate.total:<6}"
    return f"{rate.value:6.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}] {rate.hits:>6}/{rate.total:<6}"


def table(report: GoldReport) -> list[str]:
    """Printable lines: counts and rates with 95% Wilson intervals, never record text."""
    evaluation = report.evaluation
    lines = [
        (
            f"{evaluation.documents} documents, {evaluation.tokens} tokens, {evaluation.gold_spans} gold spans, "
            f"{evaluation.predicted_spans} predicted spans, {len(report.malformed)} malformed lines"
        ),
        f"{'':24} {'value':>6} {'95% interval':>15} {'hits/total':>13}",
    ]
    rows: Sequence[tuple[str, Rate]] = (
        ("token recall", evaluation.token_recall),
        ("token precision", evaluation.token_precision),
        ("span recall", evaluation.span_recall),
        ("span precision", evaluation.span_precision),
        ("PHI token share", evaluation.phi_token_share),
    )
    lines += [f"{name:24} {_cell(rate)}" for name, rate in rows]
    lines.append("by gold label: token recall | span recall")
    for label, rates in evaluation.by_label().items():
        lines.append(f"  {label:22} {_cell(rates['token_recall'])} | {_cell(rates['span_recall'])}")
    lines.append("by predicted type: token precision | span precision")
    for entity, rates in evaluation.by_type().items():
        lines.append(f"  {entity:22} {_cell(rates['token_precision'])} | {_cell(rates['span_precision'])}")
    return lines


def record(
    report: GoldReport, gold: Path, *, keystore: Keystore, ledger_path: Path, ledger_config: LedgerConfig, config: DeidConfig
) -> int:
    """Append the evaluation to the audit ledger (``appliance audit report`` shows it); its sequence number."""
    from deid.ledger.auth import LedgerAuth
    from deid.ledger.writer import LedgerWriter
    from deid.run.fingerprint import engine_versions, settings_sha256

    detector_version, rules_version = engine_versions()
    payload = ledger_payload(
        report,
        gold_file_hash=gold_hash(gold, keystore.secret(EVALUATION_SECRET)),
        settings_sha256=settings_sha256(config),
        detector_version=detector_version,
        rules_version=rules_version,
    )
    with LedgerWriter.open(
        ledger_path,
        keystore.signing_key(),
        auth=LedgerAuth.from_keystore(keystore, ledger_config.auth_secret),
        actor="deid-evaluate",
        checkpoint_every=ledger_config.checkpoint_every,
    ) as ledger:
        return ledger.append(EVALUATION_ACTION, payload)
