"""CSV (and TSV) tables: each row one document, each column under its policy.

Rows are read with the csv module over byte-counted lines, so a quoted field spanning lines
still parses and the offset after each row is exact for resuming. Cells are treated like JSONL
fields (see :mod:`deid.field_policy`): a column named ``ssn`` or ``dob`` is pseudonymized or
shifted under the default policy. Column names themselves are written as they are: a header is
a schema, and a column named after a patient is not a shape this reader expects.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from deid.anonymize.operators import AppliedSpan
from deid.readers.base import ReaderContext, RecordFormat, Unit, UnitResult
from deid.readers.lines import lines_from
from deid.config import DeidConfig
from deid.field_policy import FieldPolicies, Policy
from deid.readers.policy import DROPPED, apply_policy, record_patient


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

    def header(self, path: Path, config: DeidConfig) -> bytes:
        columns, _ = self._header(path)
        policies = FieldPolicies.from_config(config)
        return self._row([name for name in columns if policies.for_path(name, name).policy is not Policy.drop])

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
            return UnitResult(b"", malformed=[(unit.position, "no_header", "no readable header row")])
        if isinstance(unit.data[0], str):
            return UnitResult(b"", malformed=[(unit.position, *unit.data)])
        columns, row = unit.data
        if not row:
            return UnitResult(b"")
        if len(row) != len(columns):
            return UnitResult(b"", malformed=[(unit.position, "field_count", f"{len(row)} fields, header has {len(columns)}")])
        record = dict(zip(columns, row, strict=True))
        patient = record_patient(record, context, f"file:{unit.source}")
        values: list[str] = []
        applied: list[AppliedSpan] = []
        for name, value in record.items():
            new, spans = apply_policy(value, context.policies.for_path(name, name), context, patient, name)
            if new is not DROPPED:
                values.append(new)
            applied.extend(spans)
        out = self._row(values)
        raw = self._row(row)
        return UnitResult(out, [context.document(unit.source, unit.position, unit.position, raw, out, applied)])
