"""What every record format shares: units of work, their results, and the per-process context.

A reader splits a file into units (a line, a CSV row, a whole note or Bundle) in the parent
process, where the byte offset after each unit is known, so a killed run can resume exactly
there. Units are small, picklable and self-contained, so they can be transformed in worker
processes; results come back in order and only the parent writes files and the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deid.anonymize.operators import Anonymizer, AppliedSpan
from deid.anonymize.scrubber import Scrubber
from deid.config import DeidConfig
from deid.detection.known_phi import KnownPhi
from deid.field_policy import FieldPolicies
from deid.keystore import keyed_hash
from deid.malformed import Malformed


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of a file to de-identify; ``position`` is "name:line" (or row), never content."""

    source: str
    position: str
    data: Any


@dataclass(slots=True)
class DocumentRecord:
    """The PHI-free audit facts about one de-identified document.

    ``input_hmac`` is keyed (HMAC-SHA256 under a key derived from the document-id secret): a
    plain hash of a raw record lets anyone who can guess a record confirm it is in the data.
    ``output_sha256`` stays a plain hash of the de-identified output, which the audit report
    matches against output files; ``unchanged`` says the output is the input byte for byte.
    """

    position: str
    identity: str
    input_hmac: str
    output_sha256: str
    applied: list[AppliedSpan]
    unchanged: bool = False


@dataclass(slots=True)
class UnitResult:
    output: bytes
    documents: list[DocumentRecord] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    surrogates: frozenset[str] = frozenset()  # digests of the fakes in ``output`` (deid.surrogate_registry)
    # (fake, original) pairs for the re-identification vault: real PHI, filled only when it is on.
    originals: list[tuple[str, str]] = field(default_factory=list)


class PatientLookup(ABC):
    """Known PHI of a patient by the patient's source id (from FHIR Patient resources)."""

    @abstractmethod
    def known_phi(self, patient_id: str) -> Sequence[KnownPhi]: ...

    @abstractmethod
    def is_patient(self, resource_id: str) -> bool: ...


class NoPatients(PatientLookup):
    def known_phi(self, patient_id: str) -> Sequence[KnownPhi]:
        return ()

    def is_patient(self, resource_id: str) -> bool:
        return False


@dataclass(slots=True)
class ReaderContext:
    """Everything a worker needs to transform units; built once per process."""

    config: DeidConfig
    scrubber: Scrubber
    patients: PatientLookup
    document_secret: bytes
    policies: FieldPolicies = field(init=False)
    _content_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.policies = FieldPolicies.from_config(self.config)
        self._content_key = hmac.new(self.document_secret, b"record-content/v1", hashlib.sha256).digest()

    @property
    def anonymizer(self) -> Anonymizer:
        return self.scrubber.anonymizer

    def document(self, source: str, position: str, identity: str, raw: bytes, out: bytes, applied: list[AppliedSpan]) -> DocumentRecord:
        return DocumentRecord(
            position=position,
            identity=keyed_hash(self.document_secret, f"{source}\x1f{identity}"),
            input_hmac=hmac.new(self._content_key, raw, hashlib.sha256).hexdigest(),
            output_sha256=hashlib.sha256(out).hexdigest(),
            applied=applied,
            unchanged=raw == out,
        )


def entity_counts(applied: Sequence[AppliedSpan]) -> dict[str, int]:
    return dict(sorted(Counter(span.entity_type for span in applied).items()))


class RecordFormat(ABC):
    """One supported file format: how to split it, transform a unit, and start the output."""

    name: str

    @abstractmethod
    def units(self, path: Path, source: str, start: int, start_line: int) -> Iterator[tuple[Unit, int, int]]:
        """Units from byte offset ``start`` (line ``start_line + 1``), each with the offset and
        line count just after it, which is where a resumed run starts."""

    def header(self, path: Path, config: DeidConfig) -> bytes:
        """Bytes that open the output file (a CSV header); written once, before any unit."""
        return b""

    @abstractmethod
    def transform(self, unit: Unit, context: ReaderContext) -> UnitResult: ...
