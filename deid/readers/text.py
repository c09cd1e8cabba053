"""Plain-text notes: one file is one document, scrubbed as a whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from deid.readers.base import ReaderContext, RecordFormat, Unit, UnitResult

# A note larger than this is not a note; refusing it keeps memory bounded.
MAX_NOTE_BYTES = 64 << 20


class TextFormat(RecordFormat):
    name = "text"

    def units(self, path: Path, source: str, start: int, start_line: int) -> Iterator[tuple[Unit, int, int]]:
        if start > 0:
            return
        size = path.stat().st_size
        if size > MAX_NOTE_BYTES:
            yield Unit(source, source, None), size, 0
            return
        yield Unit(source, source, path.read_bytes()), size, 0

    def transform(self, unit: Unit, context: ReaderContext) -> UnitResult:
        if unit.data is None:
            return UnitResult(b"", malformed=[(unit.position, "too_large", f"larger than {MAX_NOTE_BYTES >> 20} MiB")])
        try:
            text = unit.data.decode("utf-8")
        except UnicodeDecodeError as error:
            return UnitResult(b"", malformed=[(unit.position, "not_utf8", f"not UTF-8 (byte {error.start})")])
        patient = f"note:{unit.source}"
        scrubbed, applied = context.scrubber.scrub(text, patient)
        out = scrubbed.encode("utf-8")
        return UnitResult(out, [context.document(unit.source, unit.position, unit.source, unit.data, out, applied)])
