"""What a run records in the audit ledger, as typed entries, and what it reads back on resume.

Three entries: one per de-identified document, one per malformed record, one per finished run.
Each knows its action and builds its own payload (hashes, counts, span offsets and types; never
text); the writer only appends ``entry.action, entry.payload()``. A resumed run reads back the
document ids it logged after its last checkpoint (:func:`logged_document_ids`), so no entry is
written twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from deid.anonymize.operators import AppliedSpan
from deid.ledger.entry import split_line
from deid.malformed import Malformed
from deid.readers.base import DocumentRecord, entity_counts
from deid.run.fingerprint import Fingerprint

# A base name an auditor may read as it is; any other is recorded only as the hash of the path.
_LEDGER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")


class RunAction(StrEnum):
    """The ledger actions a run writes."""

    document = "deid.document"
    malformed = "deid.malformed"
    run = "deid.run"


def record_id(position: str, source: str) -> str:
    """The record's place within its file ("12", "entry.3"), cleaned to what the ledger accepts."""
    tail = position[len(source) :] if position.startswith(source) else position
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]+", ".", tail).strip(".:-_")
    return cleaned[:64] or "file"


def _source(name: str) -> dict[str, str]:
    base = Path(name).name
    if _LEDGER_NAME.fullmatch(base):
        return {"source": base}
    return {"source_sha256": hashlib.sha256(name.encode("utf-8")).hexdigest()}


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """One de-identified document: which rules, which input (keyed), which output, what was replaced."""

    action: ClassVar[RunAction] = RunAction.document

    run_id: str
    source: str  # the output name of the file it came from
    format: str
    fingerprint: Fingerprint
    document: DocumentRecord

    def payload(self) -> dict[str, Any]:
        applied: Sequence[AppliedSpan] = self.document.applied
        return {
            "run_id": self.run_id,
            "document_id": self.document.identity,
            "record_id": record_id(self.document.position, self.source),
            "format": self.format,
            "detector_version": self.fingerprint.detector_version,
            "rules_version": self.fingerprint.rules_version,
            "settings_sha256": self.fingerprint.settings_sha256,
            "input_hmac_sha256": self.document.input_hmac,
            "output_sha256": self.document.output_sha256,
            "unchanged": self.document.unchanged,
            "entity_counts": entity_counts(applied),
            "spans": [span.as_dict() for span in applied],
            **_source(self.source),
        }


@dataclass(frozen=True, slots=True)
class MalformedEntry:
    """One record that was skipped: where (as an id keyed to the run) and the reason code only."""

    action: ClassVar[RunAction] = RunAction.malformed

    run_id: str
    source: str
    format: str
    problem: Malformed

    @property
    def document_id(self) -> str:
        """Stable within a run, so a resumed run recognises the entry it already wrote."""
        return hashlib.sha256(f"{self.run_id}\x1f{self.problem.position}".encode()).hexdigest()

    def payload(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "document_id": self.document_id,
            "record_id": record_id(self.problem.position, self.source),
            "reason": self.problem.reason.value,
            "format": self.format,
        }


@dataclass(frozen=True, slots=True)
class RunEntry:
    """The end of a run: its totals, under the settings and detector it ran with."""

    action: ClassVar[RunAction] = RunAction.run

    run_id: str
    fingerprint: Fingerprint
    files: int
    documents: int
    malformed: int
    skipped: int
    entity_counts: Counter[str]

    def payload(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "settings_sha256": self.fingerprint.settings_sha256,
            "detector_version": self.fingerprint.detector_version,
            "files_count": self.files,
            "documents": self.documents,
            "malformed_count": self.malformed,
            "skipped_count": self.skipped,
            "entity_counts": dict(self.entity_counts),
        }


@dataclass(frozen=True, slots=True)
class LoggedRecord:
    """What a resumed run needs back from a document or malformed entry: whose, and which record."""

    run_id: str
    document_id: str

    @classmethod
    def parse(cls, line: bytes) -> LoggedRecord | None:
        """The record an entry line names; None for any other entry, or a line not shaped like one."""
        parts = split_line(line.rstrip(b"\n"))
        if parts is None:
            return None
        body = json.loads(parts[0])
        if body.get("action") not in (RunAction.document, RunAction.malformed):
            return None
        payload = body.get("payload", {})
        run_id, document_id = payload.get("run_id"), payload.get("document_id")
        if not isinstance(run_id, str) or not isinstance(document_id, str):
            return None
        return cls(run_id, document_id)


def logged_document_ids(ledger_path: Path, start: int, run_id: str) -> set[str]:
    """Document ids run ``run_id`` wrote to the ledger after byte ``start`` (before it was killed)."""
    found: set[str] = set()
    if not ledger_path.exists():
        return found
    with open(ledger_path, "rb") as handle:
        handle.seek(start)
        for raw in handle:
            logged = LoggedRecord.parse(raw)
            if logged is not None and logged.run_id == run_id:
                found.add(logged.document_id)
    return found
