"""Entry point: the root Typer app, offline set-up, and errors turned into one-line messages."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.exceptions import TyperException

from appliance.cli.context import console
from deid.egress import go_offline
from deid.errors import ApplianceError, ExitCode

app = typer.Typer(
    name="appliance",
    help="On-premises medical LLM appliance: de-identify, audit, train, export, evaluate, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings file (TOML); default <home>/appliance.toml")
    ] = None,
) -> None:
    ctx.obj = None


def _register_areas() -> None:
    """Each area registers its own commands; heavy imports stay inside the commands."""
    from appliance.cli import areas

    areas.register(app)


def run() -> None:
    """Console-script entry: offline first, then the command; known errors become one line."""
    go_offline()
    # Library deprecation notices are for us, not for the operator reading the progress.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    _register_areas()
    try:
        outcome = app(standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as done:
        sys.exit(done.exit_code)
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        console.print("interrupted; no partial output was kept")
        sys.exit(ExitCode.INTERRUPTED)
    except (click.ClickException, TyperException) as usage:
        # Typer bundles its own copy of click: its usage errors are not click's classes.
        show = getattr(usage, "show", None)
        if callable(show):
            show()
        else:
            console.print(f"usage error: {usage}", markup=False)
        sys.exit(ExitCode.USAGE)
    except ApplianceError as error:
        console.print(f"error: {error}", markup=False)
        sys.exit(error.exit_code)
    except MemoryError:
        console.print("error: out of memory")
        sys.exit(ExitCode.OUT_OF_MEMORY)
    except OSError as error:
        console.print(f"error: {error.strerror or type(error).__name__} ({getattr(error, 'filename', '') or ''})", markup=False)
        sys.exit(ExitCode.FAILURE)
    except Exception as error:  # noqa: BLE001 - last line of defence: never print record text
        frame = error.__traceback__
        while frame and frame.tb_next:
            frame = frame.tb_next
        where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "unknown"
        console.print(f"error: internal error {type(error).__name__} at {where}; please report it", markup=False)
        sys.exit(ExitCode.INTERNAL)
    # Without standalone mode click hands back typer.Exit's code instead of raising it.
    sys.exit(outcome if isinstance(outcome, int) else 0)
