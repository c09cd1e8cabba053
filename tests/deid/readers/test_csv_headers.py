"""CSV column names are screened like JSON object keys: a header can be pivoted by person."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from deid.config import DeidConfig
from deid.readers.base import ReaderContext
from deid.readers.csvfile import CsvFormat
from tests.deid.test_run import appliance
from tests.support.canaries import surrogates_could_produce

# A medication round exported with one column per nurse (a pivot by person).
HEADER_CANARIES = ("Vandermeer_Philippa", "Quillfeather Ottoline")
SCHEMA = ("patient_id", "admit_date", "ward", "note")
CSV_TEXT = (
    "patient_id,admit_date,Vandermeer_Philippa,Quillfeather Ottoline,ward,note\n"
    "P-7,2023-04-02,given,held,3,Stable overnight.\n"
    "P-8,2023-04-03,held,given,5,Seen on the round.\n"
)


def _words(values: tuple[str, ...]) -> list[str]:
    return [word for value in values for word in value.replace("_", " ").split()]


def transform_all(path: Path, context: ReaderContext, start: int = 0, start_line: int = 0) -> tuple[bytes, list, list]:
    reader = CsvFormat()
    out, documents, malformed = b"", [], []
    for unit, _, _ in reader.units(path, path.name, start, start_line):
        result = reader.transform(unit, context)
        out += result.output
        documents += result.documents
        malformed += result.malformed
    return out, documents, malformed


def test_canaries_cannot_be_surrogates() -> None:
    assert not [word for word in _words(HEADER_CANARIES) if surrogates_could_produce(word)]


def test_a_person_named_column_is_replaced_and_schema_names_stay(
    tmp_path: Path, make_context: Callable[..., ReaderContext]
) -> None:
    path = tmp_path / "round.csv"
    path.write_text(CSV_TEXT)
    out, documents, malformed = transform_all(path, make_context())
    assert malformed == []
    text = out.decode()
    for word in _words(HEADER_CANARIES):
        assert word.casefold() not in text.casefold()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert len(header) == 6 and all(len(row) == 6 for row in rows)
    assert [header[0], header[1], header[4], header[5]] == list(SCHEMA)
    assert header[2] != HEADER_CANARIES[0] and header[3] != HEADER_CANARIES[1] and header[2] != header[3]
    # The header is recorded as a document of its own (position 1): what was replaced there counts.
    (header_document,) = [d for d in documents if d.position == "round.csv:1"]
    assert len(header_document.applied) >= 2 and not header_document.unchanged
    assert len(documents) == 3  # the header and the two rows
    # The cells under the renamed columns are still there, row by row.
    assert [row[2:4] for row in rows[1:]] == [["given", "held"], ["held", "given"]]


def test_a_clean_header_is_no_document_and_keep_and_drop_are_honoured(
    tmp_path: Path, make_context: Callable[..., ReaderContext]
) -> None:
    path = tmp_path / "round.csv"
    path.write_text(CSV_TEXT)
    config = DeidConfig(field_policies={"Vandermeer_Philippa": "keep", "Quillfeather Ottoline": "drop"})
    out, documents, _ = transform_all(path, make_context(config))
    rows = list(csv.reader(io.StringIO(out.decode())))
    # keep: the administrator named the column, so it is theirs to keep; drop: gone with its cells
    assert rows[0] == ["patient_id", "admit_date", "Vandermeer_Philippa", "ward", "note"]
    assert [row[2] for row in rows[1:]] == ["given", "held"]
    assert [d.position for d in documents] == ["round.csv:2", "round.csv:3"]


def test_a_resumed_run_does_not_write_the_header_again(
    tmp_path: Path, make_context: Callable[..., ReaderContext]
) -> None:
    path = tmp_path / "round.csv"
    path.write_text(CSV_TEXT)
    after_header = len(CSV_TEXT.splitlines(keepends=True)[0].encode())
    out, documents, _ = transform_all(path, make_context(), start=after_header, start_line=1)
    assert [d.position for d in documents] == ["round.csv:2", "round.csv:3"]
    assert out.decode().startswith("P-7,")


def test_repeated_column_names_keep_every_cell(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    path = tmp_path / "t.csv"
    path.write_text("patient_id,note,note\nP-1,first,second\n")
    out, _, _ = transform_all(path, make_context())
    assert list(csv.reader(io.StringIO(out.decode()))) == [["patient_id", "note", "note"], ["P-1", "first", "second"]]


def test_no_header_canary_survives_a_run(
    tmp_path: Path, appliance_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "round.csv").write_text(CSV_TEXT)
    out = tmp_path / "out"
    code, printed = appliance("deid", "run", str(source), "--out", str(out), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, printed
    ledger = (appliance_home / "ledger" / "deid.jsonl").read_text()
    written = [path.read_text(errors="replace") for path in out.rglob("*") if path.is_file()]
    haystack = "\n".join([*written, *(p.as_posix() for p in out.rglob("*")), ledger, printed]).casefold()
    assert [word for word in _words(HEADER_CANARIES) if word.casefold() in haystack] == []
    header = (out / "round.csv").read_text().splitlines()[0].split(",")
    assert len(header) == 6 and header[0] == "patient_id" and header[-1] == "note"
    entries = [json.loads(line) for line in ledger.splitlines()]
    documents = {e["payload"]["record_id"]: e["payload"] for e in entries if e.get("action") == "deid.document"}
    assert sorted(documents) == ["1", "2", "3"]  # the header (line 1) and both rows
    assert sum(documents["1"]["entity_counts"].values()) == 2
    assert "3 documents" in printed
