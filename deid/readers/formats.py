"""Which reader handles a file: by extension, and for JSON Lines, HL7 v2 in a text file and
C-CDA in an XML file by a look at the first record."""

from __future__ import annotations

import json
from pathlib import Path

from deid.errors import UnsupportedFormatError
from deid.readers.base import RecordFormat
from deid.readers.ccda import CcdaFormat, is_clinical_document
from deid.readers.csvfile import CsvFormat
from deid.readers.fhir import FhirJsonFormat, FhirNdjsonFormat
from deid.readers.hl7v2 import Hl7v2Format, is_hl7v2
from deid.readers.jsonl import JsonlFormat
from deid.readers.text import TextFormat

TEXT_SUFFIXES = frozenset({".txt", ".text", ".note"})
LINE_SUFFIXES = frozenset({".jsonl", ".ndjson"})
HL7V2_SUFFIXES = frozenset({".hl7", ".hl7v2", ".msg"})
SNIFF_LINES = 20


def _first_record_is_fhir(path: Path) -> bool:
    with open(path, "rb") as handle:
        for _ in range(SNIFF_LINES):
            raw = handle.readline()
            if not raw:
                return path.suffix.lower() == ".ndjson"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            return isinstance(record, dict) and isinstance(record.get("resourceType"), str)
    return path.suffix.lower() == ".ndjson"


def format_for(path: Path) -> RecordFormat:
    """The reader for ``path``; :class:`UnsupportedFormatError` names the file otherwise."""
    suffix = path.suffix.lower()
    if suffix in HL7V2_SUFFIXES or ((suffix in TEXT_SUFFIXES or not suffix) and is_hl7v2(path)):
        return Hl7v2Format()
    if suffix == ".xml" and is_clinical_document(path):
        return CcdaFormat()
    if suffix in TEXT_SUFFIXES:
        return TextFormat()
    if suffix in LINE_SUFFIXES:
        return FhirNdjsonFormat() if _first_record_is_fhir(path) else JsonlFormat()
    if suffix == ".json":
        return FhirJsonFormat()
    if suffix == ".csv":
        return CsvFormat(",")
    if suffix == ".tsv":
        return CsvFormat("\t")
    raise UnsupportedFormatError(
        f"{path.name}: unsupported format (expected .txt, .jsonl, .ndjson, .json FHIR, .csv, .tsv, .hl7 HL7 v2 or .xml C-CDA)"
    )
