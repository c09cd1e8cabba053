"""CSV (and TSV) tables: each row one document, each column under its policy.

Rows are read with the csv module over byte-counted lines, so a quoted field spanning lines
still parses and the offset after each row is exact for resuming. Cells are treated like JSONL
fields (see :mod:`deid.field_policy`): a column named ``ssn`` or ``dob`` is pseudonymized or
shifted under the default policy. The header row is a unit of its own, so its names get what
JSON object keys get (:func:`deid.readers.policy.scan_key`): schema names stay, a column named
after a patient (an export pivoted by person does that) is replaced and recorded like PHI in a
cell. Rows still find their policy by the original name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deid.anonymize.operators import AppliedSpan
from deid.field_policy import Policy
from deid.malformed import Malformed, MalformedReason
from deid.readers.base import ReaderContext, RecordFormat, Unit, UnitResult
from deid.readers.lines import lines_from
from deid.readers.policy import DROPPED, apply_policy, record_patient, scan_key


@dataclass(frozen=True, slots=True)
class _Header:
    """The header row's unit: column names, which may carry PHI like any cell."""

    columns: list[str]


class CsvFormat(RecordFormat):
    name = "csv"

    def __init__(self, delimiter: str = ",") -> None:
        self._delimiter = delimiter

    def _header(self, path: Path) -> tuple[list[str], int]:
        with open(path, "rb") as handle:
            first = handle.readline()
        try:
            text = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [], len(first)
        return next(csv.reader([text], delimiter=self._delimiter), []), len(first)

    def _row(self, values: list[str]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self._delimiter, lineterminator="\n").writerow(values)
        return buffer.getvalue().encode("utf-8")

    def units(self, path: Path, source: str, start: int, start_line: int) -> Iterator[tuple[Unit, int, int]]:
        columns, header_bytes = self._header(path)
        if not columns:
            yield Unit(source, f"{source}:1", None), header_bytes, 1
            return
        if start == 0:
            yield Unit(source, f"{source}:1", _Header(columns)), header_bytes, 1
            start, start_line = header_bytes, 1
        last = [(start_line, start)]  # only the newest (line, offset): memory stays bounded
        undecodable: set[int] = set()

        def text_lines() -> Iterator[str]:
            for number, raw, offset in lines_from(path, start, start_line):
                last[0] = (number, offset)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    undecodable.add(number)
                    yield raw.decode("utf-8", errors="replace")

        reader = csv.reader(text_lines(), delimiter=self._delimiter)
        first_line = start_line + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                number, offset = last[0]
                yield Unit(source, f"{source}:{first_line}", ("csv_error", f"unparseable CSV ({error})")), offset, number
                first_line = number + 1
                continue
            number, offset = last[0]
            if undecodable:
                undecodable.clear()
                yield Unit(source, f"{source}:{first_line}", ("not_utf8", "not UTF-8")), offset, number
            else:
                yield Unit(source, f"{source}:{first_line}", (columns, row)), offset, number
            first_line = number + 1

    def transform(self, unit: Unit, context: ReaderContext) -> UnitResult:
        if unit.data is None:
            return UnitResult(b"", malformed=[Malformed(unit.position, MalformedReason.no_header, "no readable header row")])
        if isinstance(unit.data, _Header):
            return self._transform_header(unit, unit.data.columns, context)
        if isinstance(unit.data[0], str):
            return UnitResult(b"", malformed=[Malformed(unit.position, *unit.data)])
        columns, row = unit.data
        if not row:
            return UnitResult(b"")
        if len(row) != len(columns):
            return UnitResult(b"", malformed=[Malformed(unit.position, MalformedReason.field_count, f"{len(row)} fields, header has {len(columns)}")])
        patient = record_patient(dict(zip(columns, row, strict=True)), context, f"file:{unit.source}")
        values: list[str] = []
        applied: list[AppliedSpan] = []
        for name, value in zip(columns, row, strict=True):  # by position: a repeated name keeps its cells
            new, spans = apply_policy(value, context.policies.for_path(name, name), context, patient, name)
            if new is not DROPPED:
                values.append(new)
            applied.extend(spans)
        out = self._row(values)
        raw = self._row(row)
        return UnitResult(out, [context.document(unit.source, unit.position, unit.position, raw, out, applied)])

    def _transform_header(self, unit: Unit, columns: list[str], context: ReaderContext) -> UnitResult:
        """The header without dropped columns, each name under its column's policy.

        The names are scoped to the file (a header belongs to no one row's patient). A header
        that needed nothing is schema, not a document; one that did is recorded as one, so the
        ledger counts what was replaced there and the vault can hold its originals.
        """
        patient = f"file:{unit.source}"
        names: list[str] = []
        applied: list[AppliedSpan] = []
        for name in columns:
            policy = context.policies.for_path(name, name)
            if policy.policy is Policy.drop:
                continue
            if policy.policy is Policy.keep:
                names.append(name)
                continue
            screened, spans = scan_key(name, context, patient, name)
            names.append(screened)
            applied.extend(spans)
        out = self._row(names)
        if not applied:
            return UnitResult(out)
        raw = self._row(columns)
        return UnitResult(out, [context.document(unit.source, unit.position, unit.position, raw, out, applied)])
