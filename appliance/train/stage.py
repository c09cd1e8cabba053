"""The ``train`` pipeline stage: a LoRA adapter from a built dataset and a local base model.

Outputs (in ``<workdir>/train/``): ``adapter/`` (peft adapter + tokenizer), ``metrics.jsonl``,
``loss.png`` and ``summary.json``. Under ``torchrun`` every process runs this function;
rank 0 owns the stage directory and the checkpoints, the others train alongside it and
read the same checkpoints when resuming (the work directory must be shared between them).
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from appliance.config import ApplianceSettings
from appliance.errors import InputError, ModelError
from appliance.pipeline.stage import (
    StageContext,
    StageResult,
    fingerprint_of,
    hash_inputs,
    load_manifest,
    run_stage,
)
from appliance.train import distributed, metrics
from appliance.train.base_model import default_target_modules, load_base_model
from appliance.train.config import TrainConfig
from appliance.train.data import read_examples, resolve_mode, tokenize
from appliance.train.distributed import DistInfo
from appliance.train.loop import ProgressFn, resolve_precision, run_training
from deid.fileio import atomic_write_text

STAGE_NAME = "train"
ADAPTER_DIR = "adapter"
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"


def train_stage(
    settings: ApplianceSettings,
    *,
    dataset_dir: Path,
    base_model: Path,
    workdir: Path,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> StageResult:
    """Train (or resume, or skip when unchanged) and return the stage result on every rank."""
    config = settings.train
    info = distributed.setup()
    train_file = dataset_dir / TRAIN_FILE
    if not train_file.is_file():
        raise InputError(f"no {TRAIN_FILE} in {dataset_dir}; run 'appliance dataset build' first")
    if not Path(base_model).exists():
        raise ModelError(f"base model path does not exist: {base_model}")
    inputs = {"train": train_file, "base_model": Path(base_model)}
    if (dataset_dir / VALIDATION_FILE).is_file():
        inputs["validation"] = dataset_dir / VALIDATION_FILE
    stage_settings = {"train": config.model_dump(mode="json"), "world_size": info.world}

    def build(ctx: StageContext) -> dict[str, Any]:
        return _build(ctx, config, inputs, Path(base_model), info, progress)

    if info.main:
        result = run_stage(workdir, STAGE_NAME, settings=stage_settings, inputs=inputs, build=build, force=force)
        distributed.barrier(info)
        return result
    return _follow(workdir, stage_settings, inputs, build, info)


def _follow(workdir: Path, stage_settings: dict[str, Any], inputs: dict[str, Path], build: Any,
            info: DistInfo) -> StageResult:
    """A non-zero rank: train in step with rank 0 but write nothing of the stage's own."""
    settings_data = json.loads(json.dumps(stage_settings, default=str, sort_keys=True))
    fingerprint = fingerprint_of(STAGE_NAME, settings_data, hash_inputs(inputs))
    final_dir = workdir / STAGE_NAME
    existing = load_manifest(final_dir)
    if not (existing and existing.fingerprint == fingerprint):
        resume_dir = workdir / ".resume" / STAGE_NAME / fingerprint[:16]
        with tempfile.TemporaryDirectory(prefix=f"train-rank{info.rank}-") as scratch:
            build(StageContext(STAGE_NAME, Path(scratch), resume_dir, fingerprint))
    distributed.barrier(info)
    manifest = load_manifest(final_dir)
    if manifest is None:
        raise InputError(f"rank 0 did not finish the train stage in {workdir}")
    return StageResult(final_dir, manifest, skipped=existing is not None and existing.fingerprint == fingerprint)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _device(info: DistInfo) -> torch.device:
    return torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def _load_tokenizer(config: TrainConfig, default: Any) -> Any:
    if config.tokenizer is None:
        return default
    from transformers import AutoTokenizer

    if not config.tokenizer.exists():
        raise ModelError(f"tokenizer path does not exist: {config.tokenizer}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(config.tokenizer), local_files_only=True)
    except Exception as error:  # noqa: BLE001 - many loader error types; the message names the file
        raise ModelError(f"cannot load tokenizer {config.tokenizer}: {type(error).__name__}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_tokenizer_matches(tokenizer: Any, model: Any) -> None:
    """Token ids beyond the embedding table would crash deep in training, or silently mislearn."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ModelError(
            f"the tokenizer does not match the model: it has {len(tokenizer)} tokens but the model's "
            f"embedding table has {rows} rows"
        )


def _peft_model(model: Any, config: TrainConfig, architecture: str, quantized: bool) -> Any:
    from peft import LoraConfig, get_peft_model

    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    targets = config.target_modules or default_target_modules(architecture)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets if targets != ["all-linear"] else "all-linear",
        task_type="CAUSAL_LM",
        bias="none",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as error:
        raise ModelError(f"LoRA target modules {targets} do not fit this {architecture} model: {error}") from None


def _build(ctx: StageContext, config: TrainConfig, inputs: dict[str, Path], base_model: Path, info: DistInfo,
           progress: ProgressFn | None) -> dict[str, Any]:
    train_examples = read_examples(inputs["train"])
    if not train_examples:
        raise InputError("the training set is empty; rebuild the dataset with more sources")
    validation_examples = read_examples(inputs["validation"]) if "validation" in inputs else []
    device = _device(info)
    if device.type == "cpu" and config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    autocast = resolve_precision(config.precision, device)
    _seed(config.seed)
    loaded = load_base_model(
        base_model, dtype=torch.float32, quantize_4bit=config.qlora, device_index=info.local_rank
    )
    tokenizer = _load_tokenizer(config, loaded.tokenizer)
    check_tokenizer_matches(tokenizer, loaded.model)
    mode = resolve_mode(config.mode, train_examples)
    train = tokenize(train_examples, tokenizer, config, mode)
    if not train:
        raise InputError("the training set is empty after tokenization (no example has tokens to learn)")
    validation = tokenize(validation_examples, tokenizer, config, mode)
    model = loaded.model if config.qlora else loaded.model.to(device)
    model = _peft_model(model, config, loaded.architecture, quantized=config.qlora)
    _seed(config.seed)
    outcome = run_training(
        model, train, validation, config,
        pad_id=tokenizer.pad_token_id, resume_dir=ctx.resume_dir, device=device, info=info, progress=progress,
    )
    summary = {
        "base_model": base_model.name,
        "base_model_path": str(base_model.resolve()),
        "architecture": loaded.architecture,
        "mode": mode.value,
        "target_modules": config.target_modules or default_target_modules(loaded.architecture),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_sequences": len(train),
        "validation_sequences": len(validation),
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
        "device": device.type,
        "precision": str(autocast).removeprefix("torch.") if autocast else "fp32",
        "qlora": config.qlora,
        "peak_memory_bytes": outcome.peak_memory_bytes,
    }
    if info.main:
        adapter_dir = ctx.output_dir / ADAPTER_DIR
        model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        metrics.write_jsonl(ctx.output_dir / "metrics.jsonl", outcome.progress.metrics)
        metrics.plot_loss(ctx.output_dir / "loss.png", outcome.progress.metrics)
        atomic_write_text(ctx.output_dir / "summary.json", json.dumps(summary, indent=2))
    distributed.barrier(info)
    return summary
