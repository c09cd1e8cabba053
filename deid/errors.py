"""Typed errors of the de-identification engine and ledger.

Messages name files, positions, entity types and counts, never record text.
"""

from __future__ import annotations


class DeidError(Exception):
    """Base class; ``str(error)`` is safe to show and log."""

    exit_code: int = 1


class UnsupportedFormatError(DeidError):
    exit_code = 3


class MalformedRecordError(DeidError):
    """One record could not be parsed; ``position`` is a file name and line or row number."""

    exit_code = 3

    def __init__(self, position: str, reason: str) -> None:
        super().__init__(f"{position}: {reason}")
        self.position = position
        self.reason = reason


class KeystoreError(DeidError):
    exit_code = 9


class LedgerError(DeidError):
    exit_code = 10


class LedgerVerificationError(LedgerError):
    """The ledger is not intact; ``sequence`` is the first bad entry (None for file-level faults)."""

    exit_code = 11

    def __init__(self, sequence: int | None, problem: str) -> None:
        where = f"entry {sequence}" if sequence is not None else "ledger"
        super().__init__(f"{where}: {problem}")
        self.sequence = sequence
        self.problem = problem


class RunInputError(DeidError):
    """An input given to a run does not exist, or two inputs would write the same output file."""

    exit_code = 3


class RunStateError(DeidError):
    """An output folder's progress journal belongs to a run with other settings or inputs."""

    exit_code = 3


class SiteTermsError(DeidError):
    """The site's own term list cannot be used; the message names the file and section only."""

    exit_code = 2
