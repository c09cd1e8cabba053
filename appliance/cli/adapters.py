"""CLI area 'adapters': combine trained LoRA adapters (e.g. a new clinical one with the general one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from

adapters_app = typer.Typer(help="Combine LoRA adapters trained on the same base model.", no_args_is_help=True)


def _weights(text: str | None, count: int) -> list[float]:
    from deid.errors import InputError

    if text is None:
        return [1.0 / count] * count
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--weights must be comma-separated numbers, got {text!r}") from None


@adapters_app.command("merge")
def merge(
    ctx: typer.Context,
    adapters: Annotated[list[Path], typer.Argument(help="two or more adapter folders")],
    out: Annotated[Path, typer.Option("--out", help="folder to write the merged adapter to (must not exist)")],
    method: Annotated[str, typer.Option("--method", help="linear | ties")] = "linear",
    weights: Annotated[str | None, typer.Option("--weights", help="one per adapter, e.g. 0.7,0.3 (default equal)")]
    = None,
    density: Annotated[float, typer.Option("--density", help="ties: share of each adapter's weights kept")] = 0.5,
    base_model: Annotated[
        Path | None, typer.Option("--base-model", help="the base they were trained on (default: settings, else embedded)")
    ] = None,
) -> None:
    """Write one adapter that blends ADAPTERS; 'appliance export --adapter OUT' and serve take it."""
    from appliance.model_source import resolve_base_model
    from appliance.train.merge import MergeMethod, merge_adapters
    from deid.errors import InputError

    try:
        chosen = MergeMethod(method)
    except ValueError:
        raise InputError(f"unknown --method {method!r}; use linear or ties") from None
    settings = settings_from(ctx)
    model_path = base_model if base_model is not None else resolve_base_model(settings.models.base)
    summary = merge_adapters(model_path, adapters, method=chosen, weights=_weights(weights, len(adapters)), out=out,
                             density=density)
    console.print(f"merged {len(adapters)} adapters ({summary['method']}, weights {summary['weights']}) -> {out}",
                  markup=False)


def register(app: typer.Typer) -> None:
    """Attach the ``adapters`` sub-app."""
    app.add_typer(adapters_app, name="adapters")
