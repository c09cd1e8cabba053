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
        method: Annotated[
            str | None, typer.Option("--method", help="cpt | sft | dpo: one stage (default: train.recipe, else "
                                     "one stage per train.mode)")
        ] = None,
        preferences: Annotated[
            Path | None, typer.Option("--preferences", help="dpo: JSONL of {prompt, chosen, rejected}")
        ] = None,
        replay: Annotated[
            Path | None, typer.Option("--replay", help="instruction JSONL replacing the dataset's replay examples")
        ] = None,
        start_from: Annotated[
            Path | None, typer.Option("--start-from", help="adapter to continue or merged model folder "
                                      "(default: the previous stage's adapter in the work directory)")
        ] = None,
        max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="override train.max_steps")] = None,
        force: Annotated[bool, typer.Option("--force", help="train again even when nothing changed")] = False,
    ) -> None:
        """Train a LoRA adapter; resumes a killed run; works under torchrun / accelerate launch."""
        from appliance.model_source import resolve_base_model
        from appliance.train.config import Method
        from appliance.train.stage import run_recipe, train_stage
        from deid.errors import InputError

        settings = settings_from(ctx)
        updates: dict[str, Any] = {}
        if max_steps is not None:
            updates["max_steps"] = max_steps
        if replay is not None:
            updates["replay"] = replay
        if start_from is not None:
            updates["start_from"] = start_from
        if updates:
            settings = settings.model_copy(update={"train": settings.train.model_copy(update=updates)})
        try:
            chosen = Method(method) if method is not None else None
        except ValueError:
            raise InputError(f"unknown --method {method!r}; use one of {', '.join(m.value for m in Method)}") from None
        target = workdir or settings.work_dir
        model_path = base_model if base_model is not None else resolve_base_model(settings.models.base)
        console.print(f"loading base model {model_path.name} ...", markup=False)
        common: dict[str, Any] = {"dataset_dir": dataset or target / "dataset", "base_model": model_path,
                                  "workdir": target, "preferences": preferences,
                                  "progress": _printer(settings.train.max_steps), "force": force}
        if chosen is None and settings.train.recipe:
            results = run_recipe(settings, **common)
        else:
            results = [train_stage(settings, method=chosen, **common)]
        for result in results:
            _report(result)


def _report(result: Any) -> None:
    details = result.manifest.details
    state = "unchanged, kept" if result.skipped else "trained"
    line = (f"{result.directory.name}: adapter {state}: {details.get('steps')} steps, "
            f"{details.get('tokens_per_second')} tokens/s, final loss {details.get('final_train_loss')}")
    if details.get("method") == "dpo":
        line += (f", held-out preference accuracy {details.get('preference_accuracy_before')} -> "
                 f"{details.get('preference_accuracy_after')}, mean reward margin {details.get('mean_reward_margin')}")
    else:
        line += f", best validation loss {details.get('best_validation_loss')}"
    console.print(f"{line} -> {result.path('adapter')}", markup=False)
