"""The appliance's errors are ``deid.errors`` (the lowest layer), re-exported while callers move."""

from deid.errors import (
    ApplianceError,
    ConfigError,
    GateError,
    IncompleteRunError,
    InputError,
    ModelError,
    StageError,
    WorkdirError,
)

__all__ = [
    "ApplianceError",
    "ConfigError",
    "GateError",
    "IncompleteRunError",
    "InputError",
    "ModelError",
    "StageError",
    "WorkdirError",
]
