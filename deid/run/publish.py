"""Outputs that are either complete under their final name or not there at all.

Each output grows as a partial file under the output folder's ``.deid-state``; a checkpoint makes
what was written durable before the journal says so, and a finished partial is renamed into
place and its folder synced, so a crash never leaves half a file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

# Hidden name and a ".partial" suffix: corpus readers that walk the output folder skip both.
STATE_DIR = ".deid-state"


def partial_path(out_dir: Path, name: str) -> Path:
    """Where output ``name`` is built until it is complete."""
    return out_dir / STATE_DIR / "partial" / f"{name}.partial"


def fsync_path(path: Path) -> None:
    """Make a file's (or a folder's entries') writes durable without holding it open for writing."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_output(output: IO[bytes]) -> int:
    """Flush and fsync an open output; returns its durable length."""
    output.flush()
    os.fsync(output.fileno())
    return output.tell()


def publish(partial: Path, final: Path, *, empty: bool = False) -> None:
    """Rename a completed partial output into place (no-op when a resumed run already did).
    ``empty``: every record was malformed, so there is no output file; the problems are reported."""
    if not partial.exists():
        return
    if empty:
        partial.unlink()
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)
    fsync_path(final.parent)
