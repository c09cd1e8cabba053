"""The model a training stage works on: device, weight dtype, tokenizer, LoRA wrapping and saving.

Shared by the LoRA stages (cpt, sft) and DPO so that both load, wrap and save a model the same way.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from appliance.train import metrics
from appliance.train.base_model import default_target_modules
from appliance.train.config import TrainConfig
from appliance.train.distributed import DistInfo
from appliance.train.loop import resolve_precision
from deid.errors import ModelError
from deid.fileio import atomic_write_text

ADAPTER_DIR = "adapter"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device_for(info: DistInfo) -> torch.device:
    return torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def load_tokenizer(config: TrainConfig, default: Any) -> Any:
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


def load_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    """Weights in the compute dtype on a GPU (bf16/fp16 halve memory); fp32 on a CPU or when asked."""
    autocast = resolve_precision(config.precision, device)
    return autocast if autocast is not None else torch.float32


def peft_model(model: Any, config: TrainConfig, architecture: str, *, quantized: bool,
               start: Path | None = None) -> Any:
    """A fresh LoRA adapter on ``model``, or ``start``'s adapter made trainable again."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if start is not None:
        try:
            return PeftModel.from_pretrained(model, str(start), is_trainable=True)
        except (ValueError, OSError, KeyError, RuntimeError) as error:
            raise ModelError(f"cannot continue the adapter in {start}: {type(error).__name__}: "
                             f"{str(error).splitlines()[0][:200] if str(error) else ''}") from None
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


def adapter_targets(model: Any) -> list[str]:
    """The target modules of the adapter actually trained (a continued one keeps its own)."""
    targets = model.peft_config["default"].target_modules
    return sorted(targets) if isinstance(targets, (set, list, tuple)) else [str(targets)]


def save_outputs(directory: Path, model: Any, tokenizer: Any, rows: list[dict[str, Any]],
                 summary: dict[str, Any], weights: dict[str, torch.Tensor] | None = None) -> None:
    """The adapter with its tokenizer, the metrics, the loss curve and the summary (numbers, no text).

    ``weights``: the whole trainable weights when the model's own are slices (a sharded run).
    """
    adapter_dir = directory / ADAPTER_DIR
    model.save_pretrained(adapter_dir, state_dict=weights)
    tokenizer.save_pretrained(adapter_dir)
    metrics.write_jsonl(directory / "metrics.jsonl", rows)
    metrics.plot_loss(directory / "loss.png", rows)
    atomic_write_text(directory / "summary.json", json.dumps(summary, indent=2))
