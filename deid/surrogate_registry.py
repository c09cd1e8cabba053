"""Digests of every surrogate a run wrote, so a later PHI re-scan can tell deid's own fakes from PHI it missed.

In surrogate mode the output is full of realistic fake names, shifted dates and fake numbers that
a detector rightly flags again. Counting detections against the ledger's per-record counts breaks
as soon as the detector splits or merges spans differently in the fake text; looking a detected
string up in a list of what deid itself wrote does not. The list holds sha256 digests of the
normalized fakes only, never of an original value (a fake that equals its original is left out),
so it reveals nothing a reader of the output could not already see.

While a run is in progress new digests are appended to a log in the state folder before each
journal checkpoint, so a killed run's resume starts from every fake written before the last
durable checkpoint; the sorted registry is published atomically when the run ends.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from deid.fileio import atomic_write_text

# Inside the run's state folder, with hidden names like the journal's: corpus readers skip them.
REGISTRY_FILE = ".surrogates.sha256"
LOG_FILE = ".surrogates.log"
_SPACE = re.compile(r"\s+")
# "+" survives: "90+" is the age cap's surrogate, and "+1 555..." a phone number.
_EDGE_PUNCTUATION = "".join(ch for ch in "!\"#$%&'()*,-./:;<=>?@[\\]^_`{|}~«»“”‘’„" if ch != "+")


def normalize(text: str) -> str:
    """The form both sides compare: case, spacing and surrounding punctuation do not matter."""
    return _SPACE.sub(" ", text.casefold()).strip().strip(_EDGE_PUNCTUATION).strip()


def digest(text: str) -> str | None:
    """sha256 hex of the normalized text; None for text with nothing left to compare."""
    key = normalize(text)
    return hashlib.sha256(key.encode("utf-8")).hexdigest() if key else None


def surrogate_digest(original: str, fake: str) -> str | None:
    """The digest to register for ``fake``, or None when it would be an original's digest."""
    if normalize(fake) == normalize(original):
        return None
    return digest(fake)


def registry_path(state_dir: Path) -> Path:
    return state_dir / REGISTRY_FILE


def load_registry(path: Path) -> frozenset[str]:
    """Digests in a published registry (or a run's log); a missing file is an empty registry."""
    if not path.is_file():
        return frozenset()
    with open(path, encoding="ascii", errors="replace") as handle:
        return frozenset(line.strip() for line in handle if len(line.strip()) == 64)


def _ends_torn(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


class RegistryWriter:
    """The parent process's side: collect, persist at checkpoints, publish at the end."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        log = state_dir / LOG_FILE
        # A resumed run starts from what the earlier run published or logged.
        self._known: set[str] = set(load_registry(registry_path(state_dir))) | set(load_registry(log))
        # A kill mid-append leaves a torn last line: end it, so the next digest starts a line.
        self._pending: list[str] = [""] if _ends_torn(log) else []

    def add(self, digests: Iterable[str]) -> None:
        for value in digests:
            if value not in self._known:
                self._known.add(value)
                self._pending.append(value)

    def flush(self) -> None:
        """Make every digest collected so far durable; call before the journal records progress."""
        if not self._pending:
            return
        self._state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._state_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(value + "\n" for value in self._pending).encode("ascii"))  # "" ends a torn line
            os.fsync(fd)
        finally:
            os.close(fd)
        self._pending.clear()

    def publish(self) -> Path:
        self.flush()
        path = registry_path(self._state_dir)
        atomic_write_text(path, "".join(value + "\n" for value in sorted(self._known)))
        return path

    def __len__(self) -> int:
        return len(self._known)
