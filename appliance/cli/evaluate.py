"""CLI area 'evaluate': the ``eval`` command (benchmarks, report, memorization gate, model card)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from


def _parse_models(values: list[str]) -> dict[str, Path]:
    from deid.errors import InputError

    models: dict[str, Path] = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not name or not path:
            raise InputError(f"--model expects NAME=PATH, got {value!r}")
        models[name] = Path(path)
    return models


def register(app: typer.Typer) -> None:
    """Attach the ``eval`` command and its ``review-sheet`` / ``import-review`` subcommands."""
    eval_app = typer.Typer(no_args_is_help=False, invoke_without_command=True)
    app.add_typer(eval_app, name="eval")

    @eval_app.command("review-sheet")
    def review_sheet(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option("--out", help="folder for review-sheet.html and review.csv")],
        workdir: Annotated[Path | None, typer.Option("--workdir", help="pipeline work directory")] = None,
    ) -> None:
        """Write the blinded answer sheet (HTML to read, CSV to grade) of the last evaluation's rubric review."""
        from appliance.evaluate.stage import write_review_sheet

        written = write_review_sheet(workdir or settings_from(ctx).work_dir, out)
        console.print("review sheet: " + "  ".join(str(path) for path in written), markup=False)

    @eval_app.command("import-review")
    def import_review_command(
        ctx: typer.Context,
        grades: Annotated[Path, typer.Argument(help="the review CSV with clinicians' grades filled in")],
        workdir: Annotated[Path | None, typer.Option("--workdir", help="pipeline work directory")] = None,
    ) -> None:
        """Add clinicians' grades to the report and the model card (written to <workdir>/review/)."""
        from appliance.evaluate.stage import import_review

        settings = settings_from(ctx)
        result = import_review(settings, workdir or settings.work_dir, grades)
        console.print(
            f"{result.manifest.details['graded']} answers graded; report: {result.path('report.html')}  "
            f"model card: {result.path('model-card.md')}",
            markup=False,
        )

    @eval_app.callback()
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
        review_limit: Annotated[
            int | None, typer.Option("--review-limit", min=0, help="questions in the rubric review; 0 skips")
        ] = None,
        judge: Annotated[Path | None, typer.Option("--judge", help="GGUF that grades the rubric review")] = None,
        force: Annotated[bool, typer.Option("--force", help="evaluate again even when nothing changed")] = False,
    ) -> None:
        """Evaluate base, fine-tuned and every quant; write report.json/.html and model-card.md."""
        if ctx.invoked_subcommand is not None:
            return
        from appliance.evaluate.stage import default_models, evaluate_stage
        from appliance.model_source import resolve_base_model
        from deid.errors import InputError

        settings = settings_from(ctx)
        options = (
            ("pubmedqa_limit", pubmedqa_limit), ("few_shot", few_shot), ("medqa_files", medqa),
            ("medmcqa_files", medmcqa), ("mmlu_limit", mmlu_limit), ("review_limit", review_limit),
            ("judge_model", judge),
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
