"""Plain-text notes: one file is one document, scrubbed as a whole."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

from deid.malformed import Malformed, MalformedReason
from deid.readers.base import ReaderContext, RecordFormat, Unit, UnitResult

# A note larger than this is not a note; refusing it keeps memory bounded.
MAX_NOTE_BYTES = 64 << 20


class WholeFileFormat(RecordFormat):
    """A format whose whole file is one unit (a note, a FHIR Bundle, a CDA document), read up to
    ``MAX_NOTE_BYTES``; a larger file is reported malformed instead of being read."""

    def units(self, path: Path, source: str, start: int, start_line: int) -> Iterator[tuple[Unit, int, int]]:
        if start > 0:
            return
        size = path.stat().st_size
        yield Unit(source, source, path.read_bytes() if size <= MAX_NOTE_BYTES else None), size, 0

    def transform(self, unit: Unit, context: ReaderContext) -> UnitResult:
        if unit.data is None:
            too_large = Malformed(unit.position, MalformedReason.too_large, f"larger than {MAX_NOTE_BYTES >> 20} MiB")
            return UnitResult(b"", malformed=[too_large])
        return self.transform_file(unit, unit.data, context)

    @abstractmethod
    def transform_file(self, unit: Unit, data: bytes, context: ReaderContext) -> UnitResult:
        """The file's bytes (within the size limit) de-identified."""


class TextFormat(WholeFileFormat):
    name = "text"

    def transform_file(self, unit: Unit, data: bytes, context: ReaderContext) -> UnitResult:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            return UnitResult(b"", malformed=[Malformed(unit.position, MalformedReason.not_utf8, f"not UTF-8 (byte {error.start})")])
        patient = f"note:{unit.source}"
        scrubbed, applied = context.scrubber.scrub(text, patient)
        out = scrubbed.encode("utf-8")
        return UnitResult(out, [context.document(unit.source, unit.position, unit.source, data, out, applied)])
