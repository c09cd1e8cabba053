"""CLI area 'train': LoRA fine-tuning of the local base model on a built dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from appliance.cli.context import console, settings_from


def _printer(max_steps: int) -> Any:
    def show(row: dict[str, Any]) -> None:
        if row["kind"] == "train":
            console.print(
                f"step {row['step']}/{max_steps}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
                f"{row['tokens_per_s'] or 0:.0f} tokens/s",
                markup=False,
            )
        elif row["kind"] == "eval":
            console.print(f"step {row['step']}/{max_steps}  validation loss {row['val_loss']:.4f}", markup=False)

    return show


def register(app: typer.Typer) -> None:
    """Attach the ``train`` command."""

    @app.command("train")
    def train(
        ctx: typer.Context,
        dataset: Annotated[
            Path | None, typer.Option("--dataset", help="built dataset folder (default <workdir>/dataset)")
        ] = None,
        base_model: Annotated[
            Path | None, typer.Option("--base-model", help="HF model folder or .gguf (default: settings, else embedded)")
        ] = None,
        workdir: Annotated[Path | None, typer.Option("--workdir", help="pipeline work directory")] = None,
        max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="override train.max_steps")] = None,
        force: Annotated[bool, typer.Option("--force", help="train again even when nothing changed")] = False,
    ) -> None:
        """Train a LoRA adapter; resumes a killed run; works under torchrun / accelerate launch."""
        from appliance.models import resolve_base_model
        from appliance.train.stage import train_stage

        settings = settings_from(ctx)
        if max_steps is not None:
            settings = settings.model_copy(update={"train": settings.train.model_copy(update={"max_steps": max_steps})})
        target = workdir or settings.work_dir
        model_path = base_model if base_model is not None else resolve_base_model(settings.models.base)
        console.print(f"loading base model {model_path.name} ...", markup=False)
        result = train_stage(
            settings,
            dataset_dir=dataset or target / "dataset",
            base_model=model_path,
            workdir=target,
            progress=_printer(settings.train.max_steps),
        )
        details = result.manifest.details
        state = "unchanged, kept" if result.skipped else "trained"
        console.print(
            f"adapter {state}: {details.get('steps')} steps, {details.get('tokens_per_second')} tokens/s, "
            f"final loss {details.get('final_train_loss')}, best validation loss "
            f"{details.get('best_validation_loss')} -> {result.path('adapter')}",
            markup=False,
        )
