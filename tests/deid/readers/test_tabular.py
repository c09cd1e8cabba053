"""CSV column policies and JSONL fields; malformed records are reported by position and skipped."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from deid.config import DeidConfig
from deid.errors import UnsupportedFormatError
from deid.readers.base import ReaderContext, RecordFormat
from deid.readers.csvfile import CsvFormat
from deid.readers.fhir import FhirNdjsonFormat
from deid.readers.formats import format_for
from deid.readers.jsonl import JsonlFormat

CSV = (
    "encounter_id,patient_id,mrn,admit_date,discharge_date,diagnosis_code,note\n"
    "E-1,P-1,MRN-448812,2022-01-10,2022-01-14,I50.9,Harold Bishop admitted with CHF; seen by Dr. Nina Patel.\n"
    "E-2,P-1,MRN-448812,2022-03-02,2022-03-03,R07.9,\"Chest pain, r/o MI.\nHarold Bishop home 3/3/22.\"\n"
    "E-3,P-2,MRN-551203,2022-02-15\n"
    "E-4,P-2,MRN-551203,2022-02-15,2022-02-20,J18.9,Evelyn Marsh intubated; son David Marsh updated.\n"
)
POLICIES = {
    "encounter_id": "keep",
    "patient_id": "pseudonymize",
    "mrn": "pseudonymize",
    "admit_date": "shift",
    "discharge_date": "shift",
    "diagnosis_code": "keep",
    "note": "scan",
}


def run_format(reader: RecordFormat, path: Path, context: ReaderContext) -> tuple[bytes, list, list]:
    out = reader.header(path, context.config)
    documents, malformed = [], []
    for unit, _, _ in reader.units(path, path.name, 0, 0):
        result = reader.transform(unit, context)
        out += result.output
        documents += result.documents
        malformed += result.malformed
    return out, documents, malformed


def test_csv_policies(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    path = tmp_path / "encounters.csv"
    path.write_text(CSV)
    config = DeidConfig(field_policies={**POLICIES, "note": "scan"}, default_field_policy="drop")
    out, documents, malformed = run_format(CsvFormat(), path, make_context(config))
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    assert [(m.position, m.reason) for m in malformed] == [("encounters.csv:5", "field_count")]  # rows span lines 2, 3-4, 5, 6
    assert len(rows) == len(documents) == 3
    assert [r["encounter_id"] for r in rows] == ["E-1", "E-2", "E-4"] and rows[0]["diagnosis_code"] == "I50.9"
    # pseudonymized: consistent, format kept, never the original
    assert rows[0]["mrn"] == rows[1]["mrn"] != rows[2]["mrn"]
    mrn = rows[0]["mrn"]
    assert mrn != "MRN-448812" and mrn[:3].isupper() and mrn[:3].isalpha() and mrn[3] == "-" and mrn[4:].isdigit()
    assert rows[0]["patient_id"] == rows[1]["patient_id"] != "P-1"
    # shifted: same offset within a patient, so the length of stay is unchanged
    for row, (admit, discharge) in zip(rows, [("2022-01-10", "2022-01-14"), ("2022-03-02", "2022-03-03")], strict=False):
        assert row["admit_date"] != admit
        stay = date.fromisoformat(row["discharge_date"]) - date.fromisoformat(row["admit_date"])
        assert stay == date.fromisoformat(discharge) - date.fromisoformat(admit)
    offsets = {
        (date.fromisoformat(r["admit_date"]) - date.fromisoformat(a)).days
        for r, a in zip(rows[:2], ["2022-01-10", "2022-03-02"], strict=True)
    }
    assert len(offsets) == 1
    # scanned free text: names gone, the quoted multi-line cell survives as one cell
    joined = " ".join(r["note"] for r in rows)
    for name in ("Bishop", "Patel", "Marsh"):
        assert name not in joined
    assert "\n" in rows[1]["note"] and "Chest pain" in rows[1]["note"]


def test_csv_drop_removes_the_column(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    path = tmp_path / "t.csv"
    path.write_text("patient_id,name,code\nP-1,Harold Bishop,X1\n")
    config = DeidConfig(field_policies={"name": "drop", "code": "keep", "patient_id": "pseudonymize:ID"})
    out, documents, _ = run_format(CsvFormat(), path, make_context(config))
    lines = out.decode().splitlines()
    assert lines[0] == "patient_id,code" and lines[1].endswith(",X1") and "Bishop" not in out.decode()
    assert documents[0].applied[0].operator == "format_preserve"


def test_jsonl_fields_and_malformed_lines(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    path = tmp_path / "notes.jsonl"
    lines = [
        {"id": "n1", "patient_id": "P-1", "text": "Mr. Peter Haldane seen 06/11/2022, MRN 7731002.", "ward": 3},
        "{broken",
        [1, 2],
        {"id": "n2", "patient_id": "P-1", "text": "Telephone f/u with Peter Haldane on 06/25/2022."},
    ]
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n")
    config = DeidConfig(field_policies={"id": "keep", "patient_id": "keep", "ward": "keep"})
    out, documents, malformed = run_format(JsonlFormat(), path, make_context(config))
    assert [(m.position, m.reason) for m in malformed] == [("notes.jsonl:2", "invalid_json"), ("notes.jsonl:3", "not_object")]
    records = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert [r["id"] for r in records] == ["n1", "n2"] and records[0]["ward"] == 3
    assert "Haldane" not in out.decode() and "7731002" not in out.decode() and "06/11/2022" not in out.decode()
    first_fake = records[0]["text"].split(" seen")[0].removeprefix("Mr. ")
    assert first_fake in records[1]["text"]  # same patient, same fake
    assert len({d.identity for d in documents}) == 2


def test_format_registry(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text('{"resourceType": "Patient", "id": "x"}\n')
    (tmp_path / "b.ndjson").write_text('{"eventId": "kickoff"}\n')
    (tmp_path / "scan.pdf").write_bytes(b"%PDF")
    assert isinstance(format_for(tmp_path / "a.ndjson"), FhirNdjsonFormat)
    assert isinstance(format_for(tmp_path / "b.ndjson"), JsonlFormat)
    with pytest.raises(UnsupportedFormatError, match=r"scan\.pdf"):
        format_for(tmp_path / "scan.pdf")
