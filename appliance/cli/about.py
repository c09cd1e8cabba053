"""CLI area 'about': the version and the effective settings."""

from __future__ import annotations

import json

import typer

from appliance import __version__
from appliance.cli.context import settings_from

config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the root app."""
    app.command("version")(version)
    app.add_typer(config_app, name="config")


def version() -> None:
    """Print the appliance version."""
    typer.echo(__version__)


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(settings_from(ctx).masked(), indent=2, default=str))
