"""Read the de-identified corpus into documents grouped by patient.

The corpus keeps the hospital formats (``deid run`` preserves names and formats): FHIR
NDJSON (notes as base64 in DocumentReference), FHIR Bundles, plain text, JSONL, CSV, HL7 v2
(each message's OBX text reports and notes) and C-CDA (each document's section narratives).
Every document carries a ``group``: the patient it belongs to when the record says so,
else its file. The train/validation split is made on groups, so one patient never lands
on both sides.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deid.errors import InputError
from deid.readers.ccda import narrative_text
from deid.readers.hl7v2 import looks_like_hl7v2, report_texts

PATIENT_FIELDS = ("patient_id", "patient", "subject", "subject_id", "mrn")
TEXT_FIELDS = ("text", "note", "note_text", "body", "content")
HL7V2_SUFFIXES = (".hl7", ".hl7v2", ".msg")
SUPPORTED_SUFFIXES = {".ndjson", ".json", ".jsonl", ".txt", ".csv", ".gz", ".xml", *HL7V2_SUFFIXES}


@dataclass
class Document:
    """A note to learn from, with the patient group it belongs to.

    ``key`` (file name and record number) is how the de-identification ledger names the same
    record, so an example can be traced back to it.
    """

    group: str
    text: str
    source: str
    key: str = ""


@dataclass
class PatientFacts:
    """Structured facts of one FHIR patient, for templated instruction pairs."""

    conditions: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    documents: list[Document] = field(default_factory=list)
    facts: dict[str, PatientFacts] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def corpus_files(root: Path) -> list[Path]:
    if not root.exists():
        raise InputError(f"de-identified corpus not found: {root}")
    if root.is_file():
        return [root]
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")
        and p.name != "manifest.json"
    )
    return files


def read_corpus(root: Path) -> Corpus:
    corpus = Corpus()
    for path in corpus_files(root):
        corpus.files.append(path)
        relative = path.name if root.is_file() else path.relative_to(root).as_posix()
        _read_file(path, relative, corpus)
    return corpus


def _open_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"cannot read {path}: {type(error).__name__}") from None


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _read_file(path: Path, relative: str, corpus: Corpus) -> None:
    kind = _kind(path)
    content = _open_text(path)
    if kind in HL7V2_SUFFIXES or (kind == ".txt" and looks_like_hl7v2(content)):
        for line, patient, text in report_texts(content):
            group = f"patient:mrn:{patient}" if patient else f"file:{relative}:{line}"
            corpus.documents.append(Document(group=group, text=text, source=relative, key=f"{path.name}#{line}"))
    elif kind == ".xml":
        narrative = narrative_text(content.encode("utf-8"))
        if narrative is not None and narrative[1].strip():
            patient, text = narrative
            group = f"patient:mrn:{patient}" if patient else f"file:{relative}"
            corpus.documents.append(Document(group=group, text=text, source=relative, key=f"{path.name}#file"))
    elif kind == ".txt":
        corpus.documents.append(Document(group=f"file:{relative}", text=content, source=relative,
                                         key=f"{path.name}#file"))
    elif kind == ".csv":
        _read_csv(content, relative, corpus, path.name)
    elif kind in (".ndjson", ".jsonl"):
        for number, row in enumerate(content.split("\n"), start=1):
            if row.strip():
                record = _Record(f"{path.name}#{number}", relative, number)
                _read_object(_parse_json(row, path, number), record, corpus)
    elif kind == ".json":
        _read_object(_parse_json(content, path, 1), _Record(f"{path.name}#1", relative, 1), corpus)


@dataclass(frozen=True)
class _Record:
    key: str
    relative: str
    line: int


def _parse_json(text: str, path: Path, line: int) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InputError(f"malformed JSON in {path} at line {line}") from None


def _read_csv(content: str, relative: str, corpus: Corpus, name: str) -> None:
    reader = csv.DictReader(io.StringIO(content))
    fields = list(reader.fieldnames or [])
    text_fields = [name for name in fields if name.lower() in TEXT_FIELDS]
    patient_field = next((name for name in fields if name.lower() in PATIENT_FIELDS), None)
    for number, row in enumerate(reader, start=2):
        text = "\n".join(str(row.get(name) or "") for name in text_fields).strip()
        if text:
            group = f"patient:{row[patient_field]}" if patient_field and row.get(patient_field) else f"file:{relative}:{number}"
            corpus.documents.append(Document(group=group, text=text, source=relative, key=f"{name}#{number}"))


def _read_object(data: Any, record: _Record, corpus: Corpus) -> None:
    if not isinstance(data, dict):
        return
    resource_type = data.get("resourceType")
    if resource_type == "Bundle":
        for entry in data.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                _read_fhir(entry["resource"], record, corpus)
    elif resource_type:
        _read_fhir(data, record, corpus)
    else:
        text = next((data[name] for name in TEXT_FIELDS if isinstance(data.get(name), str)), "")
        patient = next((data[name] for name in PATIENT_FIELDS if isinstance(data.get(name), (str, int))), None)
        if text.strip():
            group = f"patient:{patient}" if patient is not None else f"file:{record.relative}:{record.line}"
            corpus.documents.append(Document(group=group, text=text, source=record.relative, key=record.key))


def _patient_of(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) if resource.get("id") else None
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    if not isinstance(reference, str):
        return None
    return reference.rsplit("/", 1)[-1].removeprefix("urn:uuid:")


def _concept_text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            return coding["display"]
    return None


def _read_fhir(resource: dict[str, Any], record: _Record, corpus: Corpus) -> None:
    patient = _patient_of(resource)
    group = f"patient:{patient}" if patient else f"file:{record.relative}"
    kind = resource.get("resourceType")
    if kind == "DocumentReference":
        for text in _attachments(resource):
            corpus.documents.append(Document(group=group, text=text, source=record.relative, key=record.key))
    elif kind == "Condition" and patient:
        name = _concept_text(resource.get("code"))
        if name:
            corpus.facts.setdefault(group, PatientFacts()).conditions.append(name)
    elif kind == "MedicationRequest" and patient:
        name = _concept_text(resource.get("medicationCodeableConcept"))
        if name:
            corpus.facts.setdefault(group, PatientFacts()).medications.append(name)


def _attachments(resource: dict[str, Any]) -> Iterator[str]:
    for content in resource.get("content") or []:
        attachment = (content or {}).get("attachment") or {}
        data = attachment.get("data")
        if not isinstance(data, str):
            continue
        try:
            text = base64.b64decode(data, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if text.strip():
            yield text
