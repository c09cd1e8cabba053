"""The one error model of the appliance: a base class, its kinds, and the exit code of each.

It lives in ``deid``, the lowest layer, so every package raises the same errors: ``serve`` and
``appliance`` build on these instead of keeping hierarchies of their own. Every message must be
safe to print and log: it may name files, positions, settings, entity types and counts, never
record content. The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``;
the API maps its own HTTP errors (``serve.errors``) and reports these as their message only.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the ``appliance`` command's exit status means; the README lists the same table."""

    OK = 0
    FAILURE = 1  # an error of no more specific kind
    CONFIG = 2  # the settings file, the environment or a site terms file holds an invalid value
    INPUT = 3  # an input file or folder is missing, unreadable, malformed or of an unknown format
    MODEL = 4  # a model file is missing, corrupt or of an unsupported family
    WORKDIR = 5  # the work directory cannot be written, or the disk is full
    STAGE = 6  # a pipeline stage failed; its partial output was discarded
    GATE = 7  # a quality or privacy gate refused the result (residual PHI, parity, memorization)
    EGRESS = 8  # something tried to reach a non-loopback address
    KEYSTORE = 9  # the keystore is missing, locked or damaged
    LEDGER = 10  # the ledger cannot be written, or a payload could carry PHI
    LEDGER_TAMPERED = 11  # audit verify: the ledger is not intact
    VAULT = 12  # the re-identification vault refused or is damaged
    INCOMPLETE_RUN = 13  # a run finished but skipped input files; the summary names them
    OUT_OF_MEMORY = 14
    USAGE = 64  # the command line itself is wrong (unknown option, missing argument)
    INTERNAL = 70  # a bug: the message names where, never what was being processed
    INTERRUPTED = 130


class ApplianceError(Exception):
    """Base class for errors a user can act on; ``str(error)`` is shown as is."""

    exit_code: ExitCode = ExitCode.FAILURE


class ConfigError(ApplianceError):
    """The settings file or environment holds an invalid value."""

    exit_code = ExitCode.CONFIG


class SiteTermsError(ConfigError):
    """The site's own term list cannot be used; the message names the file and section only."""


class InputError(ApplianceError):
    """An input file or directory is missing, unreadable or malformed."""

    exit_code = ExitCode.INPUT


class UnsupportedFormatError(InputError):
    """No reader knows this file's format."""


class RunInputError(InputError):
    """An input given to a run does not exist, or two inputs would write the same output file."""


class RunStateError(InputError):
    """An output folder's progress journal belongs to a run with other settings or inputs."""


class ModelError(ApplianceError):
    """A model file is missing, corrupt or of an unsupported architecture."""

    exit_code = ExitCode.MODEL


class WorkdirError(ApplianceError):
    """The work directory cannot be created or written, or the disk is full."""

    exit_code = ExitCode.WORKDIR


class StageError(ApplianceError):
    """A pipeline stage failed; its partial output was discarded."""

    exit_code = ExitCode.STAGE


class GateError(ApplianceError):
    """A quality or privacy gate refused the result (residual PHI, parity, memorization)."""

    exit_code = ExitCode.GATE


class KeystoreError(ApplianceError):
    exit_code = ExitCode.KEYSTORE


class LedgerError(ApplianceError):
    exit_code = ExitCode.LEDGER


class LedgerVerificationError(LedgerError):
    """The ledger is not intact; ``sequence`` is the first bad entry (None for file-level faults)."""

    exit_code = ExitCode.LEDGER_TAMPERED

    def __init__(self, sequence: int | None, problem: str) -> None:
        where = f"entry {sequence}" if sequence is not None else "ledger"
        super().__init__(f"{where}: {problem}")
        self.sequence = sequence
        self.problem = problem


class IncompleteRunError(ApplianceError):
    """A run finished but left input files out (an unsupported format in a folder); what it
    could read was written, and the summary names each file it skipped."""

    exit_code = ExitCode.INCOMPLETE_RUN
