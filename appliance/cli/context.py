"""Shared CLI plumbing: loading settings once per invocation and the console."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from appliance.config import ApplianceSettings, load_settings

console = Console(stderr=True, highlight=False, soft_wrap=True)


def settings_from(ctx: typer.Context) -> ApplianceSettings:
    """Settings for this command, built once from ``--config`` and the environment."""
    root = ctx.find_root()
    if root.obj is None:
        config_file: Path | None = root.params.get("config")
        root.obj = load_settings(config_file)
    return root.obj
