"""The training stages: a LoRA adapter from a built dataset (cpt, sft) or preference pairs (dpo).

Each method is its own stage with its own folder, manifest and resume state: ``train-cpt/``
(continued pretraining), ``train/`` (instruction tuning, or the single mixed stage that
``train.mode`` picks when no method is named), ``train-dpo/`` (preference alignment). A stage
continues the previous stage's adapter found in the work directory (cpt before sft, sft
before dpo), so ``train.recipe = ["cpt", "sft", "dpo"]`` is the survey's recipe in order and
the last adapter holds all of it. Outputs: ``adapter/`` (peft adapter + tokenizer),
``metrics.jsonl``, ``loss.png`` and ``summary.json``. Under ``torchrun`` every process runs
this function; rank 0 owns the stage directory and the checkpoints, the others train
alongside it and read the same checkpoints when resuming (the work directory must be shared).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import torch

from appliance.config import ApplianceSettings
from appliance.families.family_registry import require_exportable_base
from appliance.pipeline.stage import (
    StageContext,
    StageResult,
    follow_stage,
    load_manifest,
    run_stage,
    stage_dir,
)
from appliance.train import distributed
from appliance.train.adapter_model import (
    ADAPTER_DIR,
    adapter_targets,
    check_tokenizer_matches,
    device_for,
    load_dtype,
    load_tokenizer,
    peft_model,
    save_outputs,
    seed_everything,
)
from appliance.train.base_model import load_base_model
from appliance.train.config import Method, Sharding, TrainConfig, TrainMode
from appliance.train.data import read_examples, resolve_mode, tokenize
from appliance.train.distributed import DistInfo
from appliance.train.loop import ProgressFn, resolve_precision, run_training
from deid.errors import InputError, ModelError

STAGE_NAME = "train"
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
ADAPTER_CONFIG = "adapter_config.json"
# the stage each method continues from when nothing else is named
PREVIOUS = {Method.sft: Method.cpt, Method.dpo: Method.sft}
METHOD_MODE: dict[Method | None, TrainMode] = {Method.cpt: TrainMode.pretrain, Method.sft: TrainMode.sft}


def stage_name(method: Method | None) -> str:
    """``train`` for instruction tuning (what export and the model card read), ``train-<method>`` otherwise."""
    return STAGE_NAME if method in (None, Method.sft) else f"{STAGE_NAME}-{method.value}"


def resolve_start(config: TrainConfig, workdir: Path, method: Method | None) -> Path | None:
    """The adapter (or merged model folder) this stage starts from; None = a fresh adapter on the base."""
    if config.start_from is not None:
        if not Path(config.start_from).is_dir():
            raise InputError(f"train.start_from is not a folder: {config.start_from}")
        return Path(config.start_from)
    previous = PREVIOUS.get(method) if method is not None else None
    if previous is not None:
        candidate = workdir / stage_name(previous) / ADAPTER_DIR
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    return None


def is_adapter(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file()


def train_stage(
    settings: ApplianceSettings,
    *,
    dataset_dir: Path,
    base_model: Path,
    workdir: Path,
    method: Method | None = None,
    preferences: Path | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> StageResult:
    """Train (or resume, or skip when unchanged) one method's stage and return its result on every rank."""
    config = settings.train
    info = distributed.setup()
    if not Path(base_model).exists():
        raise ModelError(f"base model path does not exist: {base_model}")
    require_exportable_base(Path(base_model), allow_unexportable=config.allow_unexportable)
    start = resolve_start(config, workdir, method)
    if start is not None and not is_adapter(start):
        base_model, start = start, None  # a merged model folder is the new base
    name = stage_name(method)
    if method is Method.dpo:
        from appliance.train.dpo import dpo_build, preference_inputs

        inputs = preference_inputs(preferences, Path(base_model), start)

        def build(ctx: StageContext) -> dict[str, Any]:
            return dpo_build(ctx, config, inputs, info, progress)
    else:
        inputs = _dataset_inputs(dataset_dir, Path(base_model), start, config)

        def build(ctx: StageContext) -> dict[str, Any]:
            return _build(ctx, config, inputs, method, info, progress, settings.dataset.recipes.replay)
    # what the stage learns from is hashed in `inputs` (the start adapter's files, the replay file);
    # which recipe asked for the stage, or by which path its start was named, changes nothing
    stage_settings = {"train": config.model_dump(mode="json", exclude={"recipe", "start_from", "replay"}),
                      "method": method.value if method else None, "world_size": info.world}
    if info.main:
        result = run_stage(workdir, name, settings=stage_settings, inputs=inputs, build=build, force=force)
        distributed.barrier(info)
        return result
    return _follow(workdir, name, stage_settings, inputs, build, info)


def run_recipe(
    settings: ApplianceSettings,
    *,
    dataset_dir: Path,
    base_model: Path,
    workdir: Path,
    preferences: Path | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> list[StageResult]:
    """``train.recipe`` in order, each stage continuing the adapter the one before it wrote."""
    recipe = settings.train.recipe
    if not recipe:
        raise InputError("train.recipe is empty; name the stages, e.g. [\"cpt\", \"sft\"]")
    if len(set(recipe)) != len(recipe):
        raise InputError(f"train.recipe names a stage twice: {[m.value for m in recipe]}")
    if Method.dpo in recipe and preferences is None:
        raise InputError("the recipe has a dpo stage: give the preference pairs (--preferences FILE)")
    results: list[StageResult] = []
    start = settings.train.start_from
    for method in recipe:
        stage_settings = settings.model_copy(update={"train": settings.train.model_copy(update={"start_from": start})})
        result = train_stage(stage_settings, dataset_dir=dataset_dir, base_model=base_model, workdir=workdir,
                             method=method, preferences=preferences, progress=progress, force=force)
        results.append(result)
        start = result.path(ADAPTER_DIR)
    return results


def _dataset_inputs(dataset_dir: Path, base_model: Path, start: Path | None, config: TrainConfig) -> dict[str, Path]:
    train_file = dataset_dir / TRAIN_FILE
    if not train_file.is_file():
        raise InputError(f"no {TRAIN_FILE} in {dataset_dir}; run 'appliance dataset build' first")
    inputs = {"train": train_file, "base_model": base_model}
    if (dataset_dir / VALIDATION_FILE).is_file():
        inputs["validation"] = dataset_dir / VALIDATION_FILE
    if start is not None:
        inputs["start_adapter"] = start
    if config.replay is not None:
        if not Path(config.replay).is_file():
            raise InputError(f"replay file not found: {config.replay}")
        inputs["replay"] = Path(config.replay)
    return inputs


def _follow(workdir: Path, name: str, stage_settings: dict[str, Any], inputs: dict[str, Path], build: Any,
            info: DistInfo) -> StageResult:
    """A non-zero rank: train in step with rank 0 but write nothing of the stage's own."""
    with tempfile.TemporaryDirectory(prefix=f"train-rank{info.rank}-") as scratch:
        before = follow_stage(workdir, name, settings=stage_settings, inputs=inputs, build=build, scratch=Path(scratch))
    distributed.barrier(info)
    manifest = load_manifest(stage_dir(workdir, name))
    if manifest is None:
        raise InputError(f"rank 0 did not finish the {name} stage in {workdir}")
    return StageResult(stage_dir(workdir, name), manifest, skipped=before is not None)


def select_for(method: Method | None, examples: list[dict[str, Any]], mode: TrainMode) -> list[dict[str, Any]]:
    """The examples a method learns from: cpt the plain text, sft the chats, the mixed stage all."""
    if method is Method.cpt:
        return [e for e in examples if e.get("kind") != "chat"]
    if method is Method.sft:
        return [e for e in examples if e.get("kind") == "chat"]
    return examples


def with_replay(examples: list[dict[str, Any]], replay: Path | None, share: float, seed: int) -> list[dict[str, Any]]:
    """Swap the dataset's replay examples for ones drawn from ``replay`` (the same count, or ``share`` of the rest)."""
    if replay is None:
        return examples
    from appliance.dataset.qa import read_qa_file
    from appliance.dataset.recipes import dialogue_examples

    pool = [e.record() for e in dialogue_examples(read_qa_file(Path(replay)), "replay")]
    if not pool:
        raise InputError(f"the replay file holds no instruction examples: {replay}")
    kept = [e for e in examples if e.get("recipe") != "replay"]
    count = len(examples) - len(kept) or max(1, round(len(kept) * share))
    return kept + random.Random(seed).sample(pool, min(count, len(pool)))


def _build(ctx: StageContext, config: TrainConfig, inputs: dict[str, Path], method: Method | None, info: DistInfo,
           progress: ProgressFn | None, replay_share: float) -> dict[str, Any]:
    mode = METHOD_MODE.get(method, config.mode)
    all_train = read_examples(inputs["train"])
    all_validation = read_examples(inputs["validation"]) if "validation" in inputs else []
    train_examples = select_for(method, all_train, mode)
    if method is not Method.cpt:  # replay is instruction data; continued pretraining learns text
        train_examples = with_replay(train_examples, inputs.get("replay"), replay_share, config.seed)
    if not train_examples:
        kind = {Method.cpt: " (no plain-text examples for continued pretraining)",
                Method.sft: " (no chat examples for instruction tuning)"}.get(method, "") if method else ""
        raise InputError(f"the training set is empty{kind}; rebuild the dataset with more sources")
    validation_examples = select_for(method, all_validation, mode)
    device = device_for(info)
    if device.type == "cpu" and config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    autocast = resolve_precision(config.precision, device)
    seed_everything(config.seed)
    base_model = inputs["base_model"]
    start = inputs.get("start_adapter")
    loaded = load_base_model(base_model, dtype=load_dtype(config, device), quantize_4bit=config.qlora,
                             device_index=info.local_rank, attention=config.attention.value)
    tokenizer = load_tokenizer(config, loaded.tokenizer)
    check_tokenizer_matches(tokenizer, loaded.model)
    mode = resolve_mode(mode, train_examples)
    train = tokenize(train_examples, tokenizer, config, mode)
    if not train:
        raise InputError("the training set is empty after tokenization (no example has tokens to learn)")
    validation = tokenize(validation_examples, tokenizer, config, mode)
    # sharded, the model stays on the CPU: fully_shard moves each process's slices to its GPU
    sharded = info.enabled and config.sharding is Sharding.fsdp
    model = loaded.model if config.qlora or sharded else loaded.model.to(device)
    model = peft_model(model, config, loaded.architecture, quantized=config.qlora, start=start)
    seed_everything(config.seed)
    outcome = run_training(
        model, train, validation, config,
        pad_id=tokenizer.pad_token_id, resume_dir=ctx.resume_dir, device=device, info=info, progress=progress,
    )
    summary = {
        "method": method.value if method else None,
        "base_model": base_model.name,
        "base_model_path": str(base_model.resolve()),
        "started_from": str(start) if start is not None else "base",
        "architecture": loaded.architecture,
        "mode": mode.value,
        "target_modules": adapter_targets(model),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_sequences": len(train),
        "validation_sequences": len(validation),
        "replay_file": Path(inputs["replay"]).name if "replay" in inputs else None,
        "steps": outcome.progress.step,
        "epochs_started": outcome.progress.epoch + 1,
        "tokens": outcome.progress.tokens,
        "tokens_per_second": round(outcome.tokens_per_second, 2),
        "final_train_loss": next((r["loss"] for r in reversed(outcome.progress.metrics) if r["kind"] == "train"), None),
        "best_validation_loss": outcome.progress.best_val_loss,
        "stopped_early": outcome.stopped_early,
        "adapter_is_best_checkpoint": outcome.restored_best,
        "resumed_from_step": outcome.resumed_from_step,
        "world_size": info.world,
        "sharding": config.sharding.value if info.enabled else Sharding.none.value,
        "parameters_per_process": outcome.parameters_per_process,
        "device": device.type,
        "precision": str(autocast).removeprefix("torch.") if autocast else "fp32",
        "attention": config.attention.value,
        "gradient_checkpointing": config.gradient_checkpointing,
        "qlora": config.qlora,
        "peak_memory_bytes": outcome.peak_memory_bytes,
    }
    if info.main:
        save_outputs(ctx.output_dir, model, tokenizer, outcome.progress.metrics, summary, outcome.adapter_weights)
    distributed.barrier(info)
    return summary


