"""CLI area 'evaluate': the ``eval`` command (benchmarks, report, memorization gate, model card)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from


def _parse_models(values: list[str]) -> dict[str, Path]:
    from appliance.errors import InputError

    models: dict[str, Path] = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not name or not path:
            raise InputError(f"--model expects NAME=PATH, got {value!r}")
        models[name] = Path(path)
    return models


def register(app: typer.Typer) -> None:
    """Attach the ``eval`` command."""

    @app.command("eval")
    def evaluate(
        ctx: typer.Context,
        workdir: Annotated[Path | None, typer.Option("--workdir", help="pipeline work directory")] = None,
        model: Annotated[
            list[str] | None,
            typer.Option("--model", help="NAME=PATH (GGUF or HF folder), repeatable; default: base + export outputs"),
        ] = None,
        heldout: Annotated[
            Path | None, typer.Option("--heldout", help="held-out de-identified notes (.txt/.jsonl or folder)")
        ] = None,
        canaries: Annotated[
            Path | None, typer.Option("--canaries", help="file with one planted canary string per line")
        ] = None,
        pubmedqa_limit: Annotated[int | None, typer.Option("--pubmedqa-limit", min=1)] = None,
        few_shot: Annotated[int | None, typer.Option("--few-shot", min=0, max=6)] = None,
        medqa: Annotated[
            list[Path] | None, typer.Option("--medqa", help="multiple-choice file in the MedQA JSONL layout, repeatable")
        ] = None,
        medmcqa: Annotated[
            list[Path] | None, typer.Option("--medmcqa", help="multiple-choice file in the MedMCQA layout, repeatable")
        ] = None,
        mmlu_limit: Annotated[
            int | None, typer.Option("--mmlu-limit", min=0, help="MMLU medical questions (by subject); 0 skips")
        ] = None,
        full: Annotated[bool, typer.Option("--full", help="every question of every benchmark")] = False,
        force: Annotated[bool, typer.Option("--force", help="evaluate again even when nothing changed")] = False,
    ) -> None:
        """Evaluate base, fine-tuned and every quant; write report.json/.html and model-card.md."""
        from appliance.errors import InputError
        from appliance.evaluate.stage import default_models, evaluate_stage
        from appliance.models import resolve_base_model

        settings = settings_from(ctx)
        options = (
            ("pubmedqa_limit", pubmedqa_limit), ("few_shot", few_shot), ("medqa_files", medqa),
            ("medmcqa_files", medmcqa), ("mmlu_limit", mmlu_limit),
        )
        overrides = {key: value for key, value in options if value is not None}
        chosen = settings.eval.full() if full else settings.eval
        if overrides or full:
            settings = settings.model_copy(update={"eval": chosen.updated(**overrides)})
        target = workdir or settings.work_dir
        models = _parse_models(model) if model else default_models(target, resolve_base_model(settings.models.base))
        planted: list[str] | None = None
        if canaries is not None:
            if not canaries.is_file():
                raise InputError(f"canary file not found: {canaries}")
            planted = [line for line in canaries.read_text(encoding="utf-8").splitlines() if line.strip()]
        result = evaluate_stage(
            settings,
            models=models,
            workdir=target,
            heldout_texts=heldout,
            canaries=planted,
            progress=lambda message: console.print(f"eval: {message}", markup=False),
            force=force,
        )
        for name, results in result.manifest.details["models"].items():
            shown = ", ".join(f"{key} {value}" for key, value in results.items() if not isinstance(value, dict))
            console.print(f"{name}: {shown}", markup=False)
        console.print(f"report: {result.path('report.html')}  model card: {result.path('model-card.md')}", markup=False)
