"""Typed errors of the appliance.

Every message must be safe to print: it may name files, settings and counts, never record
content. The CLI turns these into one-line messages and the API into OpenAI-shaped errors.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base class for errors a user can act on; ``str(error)`` is shown as is."""

    exit_code: int = 1


class ConfigError(ApplianceError):
    """The settings file or environment holds an invalid value."""

    exit_code = 2


class InputError(ApplianceError):
    """An input file or directory is missing, unreadable or malformed."""

    exit_code = 3


class ModelError(ApplianceError):
    """A model file is missing, corrupt or of an unsupported architecture."""

    exit_code = 4


class WorkdirError(ApplianceError):
    """The work directory cannot be created or written, or the disk is full."""

    exit_code = 5


class StageError(ApplianceError):
    """A pipeline stage failed; its partial output was discarded."""

    exit_code = 6


class GateError(ApplianceError):
    """A quality or privacy gate refused the result (residual PHI, parity, memorization)."""

    exit_code = 7


class IncompleteRunError(ApplianceError):
    """A run finished but left input files out (an unsupported format in a folder); what it
    could read was written, and the summary names each file it skipped."""

    exit_code = 13
