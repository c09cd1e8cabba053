"""Byte-exact line iteration, so every unit knows the offset a resumed run must start from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def lines_from(path: Path, start: int, start_line: int) -> Iterator[tuple[int, bytes, int]]:
    """(1-based line number, raw line, offset after it) from byte offset ``start``, which is
    the beginning of line ``start_line + 1`` (the journal remembers both)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        offset = start
        number = start_line
        for raw in handle:
            number += 1
            offset += len(raw)
            yield number, raw, offset
