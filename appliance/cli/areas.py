"""The list of CLI areas; each module adds its commands to the root app."""

from __future__ import annotations

import importlib

import typer

AREA_MODULES = (
    "appliance.cli.about",
    "appliance.cli.doctor",
    "appliance.cli.deid",
    "appliance.cli.audit",
    "appliance.cli.dataset",
    "appliance.cli.train",
    "appliance.cli.adapters",
    "appliance.cli.feedback",
    "appliance.cli.export",
    "appliance.cli.evaluate",
    "appliance.cli.serve",
    "appliance.cli.keys",
    "appliance.cli.kb",
    "appliance.cli.bundle",
    "appliance.cli.demo",
)


def register(app: typer.Typer) -> None:
    """Import each area module and let it attach its sub-app or commands."""
    for name in AREA_MODULES:
        importlib.import_module(name).register(app)
