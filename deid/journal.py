"""The progress journal of a de-identification run, so a killed run resumes exactly.

Append-only JSON lines, each fsynced. A checkpoint records, for one input file, the input byte
offset and line reached, how many output bytes are durable in the file's partial output, and
how long the ledger was at that moment. A resumed run truncates the partial output to that
length, seeks the input to that offset, and treats ledger entries written after that length
by the same run as already written, so no record is duplicated or lost. A torn last line
(the kill came mid-write) is ignored: the previous checkpoint still holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from deid.errors import RunStateError
from deid.malformed import Malformed, MalformedReason


class JournalEvent(StrEnum):
    """The kinds of journal line: a run began, a file got this far, a record was malformed."""

    start = "start"
    progress = "progress"
    problem = "problem"


@dataclass(slots=True)
class FileProgress:
    offset: int = 0
    line: int = 0
    out_bytes: int = 0
    ledger_bytes: int = 0
    documents: int = 0
    malformed: int = 0
    done: bool = False
    size: int = 0
    mtime_ns: int = 0


@dataclass(slots=True)
class JournalState:
    run_id: str | None = None
    settings_sha256: str | None = None
    files: dict[str, FileProgress] = field(default_factory=dict)
    problems: dict[str, dict[str, Malformed]] = field(default_factory=dict)  # file -> position -> what was wrong


class Journal:
    def __init__(self, path: Path) -> None:
        self._path = path
        self.state = self._load(path)

    @staticmethod
    def _load(path: Path) -> JournalState:
        state = JournalState()
        if not path.exists():
            return state
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    event = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # torn last line of a killed run
                kind = event.get("event")
                if kind == JournalEvent.start:
                    state.run_id = event["run_id"]
                    state.settings_sha256 = event["settings_sha256"]
                elif kind == JournalEvent.progress:
                    state.files[event["file"]] = FileProgress(**event["progress"])
                elif kind == JournalEvent.problem:
                    problem = Malformed(event["position"], MalformedReason(event["reason"]), event["detail"])
                    state.problems.setdefault(event["file"], {})[problem.position] = problem
        return state

    def _append(self, event: dict[str, Any]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def begin(self, run_id: str, settings_sha256: str) -> str:
        """Start or continue; returns the run id (the original one when resuming)."""
        if self.state.run_id is not None:
            if self.state.settings_sha256 != settings_sha256:
                raise RunStateError(
                    f"{self._path.parent.parent}: holds a run with different de-identification settings; "
                    "use another --out folder or remove this one"
                )
            return self.state.run_id
        self.state.run_id = run_id
        self.state.settings_sha256 = settings_sha256
        self._append({"event": JournalEvent.start.value, "run_id": run_id, "settings_sha256": settings_sha256})
        return run_id

    def problem(self, name: str, problem: Malformed) -> None:
        """A malformed record, kept so a resumed run still reports what the killed one found."""
        self.state.problems.setdefault(name, {})[problem.position] = problem
        self._append(
            {
                "event": JournalEvent.problem.value,
                "file": name,
                "position": problem.position,
                "reason": problem.reason.value,
                "detail": problem.detail,
            }
        )

    def progress(self, name: str, progress: FileProgress) -> None:
        self.state.files[name] = progress
        self._append({"event": JournalEvent.progress.value, "file": name, "progress": asdict(progress)})

    def for_file(self, name: str, size: int, mtime_ns: int) -> FileProgress:
        """Where to start ``name``; refuses to resume over an input that changed since."""
        known = self.state.files.get(name)
        if known is None:
            return FileProgress(size=size, mtime_ns=mtime_ns)
        if (known.size, known.mtime_ns) != (size, mtime_ns):
            raise RunStateError(
                f"{name}: changed since the interrupted run started; use another --out folder or remove this one"
            )
        return FileProgress(**asdict(known))
