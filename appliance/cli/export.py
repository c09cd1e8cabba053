"""CLI area 'export': merge the adapter, convert to GGUF, quantize, and gate on parity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from


def register(app: typer.Typer) -> None:
    """Attach the ``export`` command."""

    @app.command("export")
    def export(
        ctx: typer.Context,
        adapter: Annotated[
            Path | None, typer.Option("--adapter", help="peft LoRA adapter folder (default: the adapter of the "
                                      "training stage that finished last, e.g. train-dpo after train)")
        ] = None,
        no_adapter: Annotated[bool, typer.Option("--no-adapter", help="export the base model alone")] = False,
        base_model: Annotated[
            Path | None, typer.Option("--base-model", help="HF model folder or .gguf (default: settings, else embedded)")
        ] = None,
        workdir: Annotated[Path | None, typer.Option("--workdir", help="pipeline work directory")] = None,
        heldout: Annotated[
            Path | None, typer.Option("--heldout", help="held-out de-identified text (.txt/.jsonl or folder) for perplexity")
        ] = None,
        quant: Annotated[
            list[str] | None, typer.Option("--quant", help="quantization type, repeatable (default: settings)")
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="export again even when nothing changed")] = False,
    ) -> None:
        """Merge LoRA into the full-precision base, write GGUF (+ adapter GGUF), quantize, check parity."""
        from appliance.export.stage import export_stage
        from appliance.model_source import resolve_base_model
        from deid.errors import InputError

        settings = settings_from(ctx)
        if quant:
            settings = settings.model_copy(update={"export": settings.export.updated(quantizations=quant)})
        target = workdir or settings.work_dir
        adapter_dir = None if no_adapter else (adapter or _last_trained_adapter(target))
        if adapter_dir is not None and not adapter_dir.is_dir():
            raise InputError(f"adapter folder not found: {adapter_dir} (run 'appliance train' or pass --no-adapter)")
        model_path = base_model if base_model is not None else resolve_base_model(settings.models.base)
        result = export_stage(
            settings,
            base_model=model_path,
            adapter_dir=adapter_dir,
            workdir=target,
            heldout_texts=heldout,
            progress=lambda message: console.print(f"export: {message}", markup=False),
            force=force,
        )
        details = result.manifest.details
        state = "unchanged, kept" if result.skipped else "exported"
        reference = details["reference"]
        console.print(
            f"{state}: {reference['file']} (perplexity {reference['perplexity']}), "
            + ", ".join(f"{q['type']} ({q['increase']:+.1%})" for q in details["quantizations"])
            + (f"; refused: {', '.join(q['type'] for q in details['refused'])}" if details["refused"] else "")
            + f" -> {result.directory}",
            markup=False,
        )


def _last_trained_adapter(workdir: Path) -> Path:
    """The adapter of the stage trained last: a recipe's final stage (dpo after sft), not always train/."""
    from appliance.pipeline.stage import load_manifest
    from appliance.train.config import Method
    from appliance.train.stage import ADAPTER_DIR, stage_name

    # a recipe's stages may finish within the same second: the later method in the pipeline wins the tie
    finished = [(manifest.finished_at, order, workdir / stage_name(method) / ADAPTER_DIR)
                for order, method in enumerate(Method)
                if (manifest := load_manifest(workdir / stage_name(method))) is not None]
    return max(finished)[2] if finished else workdir / stage_name(Method.sft) / ADAPTER_DIR
