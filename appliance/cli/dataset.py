"""CLI area 'dataset': build a training set from de-identified records and Q&A files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from

dataset_app = typer.Typer(help="Training sets from de-identified records.", no_args_is_help=True)


@dataset_app.command("build")
def build(
    ctx: typer.Context,
    deid: Annotated[
        Path | None, typer.Option("--deid", help="de-identified corpus (the output folder of 'deid run')")
    ] = None,
    qa: Annotated[
        list[Path] | None, typer.Option("--qa", help="Q&A or dialogue JSONL(.gz), e.g. MedQuAD; repeatable")
    ] = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="pipeline work directory")] = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild even when nothing changed")] = False,
) -> None:
    """Build train/validation JSONL with recipes, dedupe, a patient split and the PHI gate."""
    from appliance.dataset.stage import build_dataset_stage

    settings = settings_from(ctx)
    target = workdir or settings.work_dir
    with console.status("building the dataset (recipes, dedupe, PHI re-scan)..."):
        result = build_dataset_stage(settings, deid_dir=deid, qa_files=list(qa or []), workdir=target, force=force)
    counts = result.manifest.details["counts"]
    gate = result.manifest.details["phi_gate"]
    state = "unchanged, kept" if result.skipped else "built"
    console.print(
        f"dataset {state}: {counts['train']} train / {counts['validation']} validation examples "
        f"(taken per recipe: {counts['taken']}); PHI gate: "
        + (f"{gate.get('residual_per_1k_tokens')} residual per 1k tokens" if gate.get("enabled") else "off")
        + f" -> {result.directory}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Attach the ``dataset`` sub-app."""
    app.add_typer(dataset_app, name="dataset")
