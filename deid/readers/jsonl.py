"""JSON Lines records: each line one document; every field, nested value and key under its policy (see :mod:`deid.field_policy`)."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deid.malformed import Malformed, MalformedReason
from deid.readers.base import ReaderContext, RecordFormat, Unit, UnitResult
from deid.readers.lines import lines_from
from deid.readers.policy import record_patient, transform_object


def decode_object(raw: bytes, position: str) -> dict[str, Any] | Malformed:
    """The JSON object in ``raw``, or a PHI-free report of why it is not one."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return Malformed(position, MalformedReason.not_utf8, f"not UTF-8 (byte {error.start})")
    except json.JSONDecodeError as error:
        detail = f"invalid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        return Malformed(position, MalformedReason.invalid_json, detail)
    if not isinstance(value, dict):
        return Malformed(position, MalformedReason.not_object, "not a JSON object")
    return value


class JsonLinesFormat(RecordFormat):
    """One JSON object per line: a blank line passes through, a line that is no object is
    reported; subclasses say what to do with each object."""

    def units(self, path: Path, source: str, start: int, start_line: int) -> Iterator[tuple[Unit, int, int]]:
        for number, raw, offset in lines_from(path, start, start_line):
            yield Unit(source, f"{source}:{number}", raw), offset, number

    def transform(self, unit: Unit, context: ReaderContext) -> UnitResult:
        raw: bytes = unit.data
        if not raw.strip():
            return UnitResult(raw)
        decoded = decode_object(raw, unit.position)
        if isinstance(decoded, Malformed):
            return UnitResult(b"", malformed=[decoded])
        return self.transform_object(decoded, raw, unit, context)

    @abstractmethod
    def transform_object(self, record: dict[str, Any], raw: bytes, unit: Unit, context: ReaderContext) -> UnitResult: ...


class JsonlFormat(JsonLinesFormat):
    name = "jsonl"

    def transform_object(self, record: dict[str, Any], raw: bytes, unit: Unit, context: ReaderContext) -> UnitResult:
        patient = record_patient(record, context, f"file:{unit.source}")
        output, applied = transform_object(record, context, patient)
        out = (json.dumps(output, ensure_ascii=False) + "\n").encode("utf-8")
        identity = str(record.get("id", unit.position))
        return UnitResult(out, [context.document(unit.source, unit.position, identity, raw, out, applied)])
