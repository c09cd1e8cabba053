"""Typed settings of ``appliance train`` (LoRA).

Defaults suit the demo: the embedded 135M model on two CPU cores, a handful of steps of
batch 4 x 256 tokens. A GPU server raises ``max_steps`` and ``batch_size`` in its settings.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field


class TrainMode(str, Enum):
    auto = "auto"  # SFT when the set holds chat examples, else continued pretraining
    pretrain = "pretrain"
    sft = "sft"


class Schedule(str, Enum):
    cosine = "cosine"
    linear = "linear"
    constant = "constant"


class Precision(str, Enum):
    auto = "auto"  # bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on a CPU
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Overlong(str, Enum):
    error = "error"
    truncate = "truncate"
    drop = "drop"


class TrainConfig(BaseModel):
    mode: TrainMode = TrainMode.auto
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | None = Field(None, description="None = chosen per architecture")
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_steps: int = Field(4, ge=1, description="optimizer steps")
    batch_size: int = Field(4, ge=1, description="sequences per process per micro-step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_seq_length: int = Field(256, ge=8)
    packing: bool = Field(True, description="pack examples into full windows instead of padding")
    group_by_length: bool = Field(True, description="without packing: batch examples of similar length")
    overlong: Overlong = Field(Overlong.error, description="an example longer than max_seq_length")
    schedule: Schedule = Schedule.cosine
    warmup_steps: int = Field(1, ge=0)
    eval_interval: int = Field(0, ge=0, description="steps between validation losses; 0 = only at the end")
    max_eval_batches: int | None = Field(2, ge=1, description="cap per evaluation; None = the whole validation set")
    early_stopping_patience: int = Field(0, ge=0, description="evaluations without improvement; 0 = off")
    early_stopping_min_delta: float = Field(0.0, ge=0.0, description="a smaller drop in loss is no improvement")
    checkpoint_interval: int = Field(2, ge=1, description="steps between resume checkpoints")
    precision: Precision = Precision.auto
    qlora: bool = Field(False, description="4-bit base with bitsandbytes (GPU only)")
    gradient_checkpointing: bool = False
    cpu_threads: int | None = Field(None, ge=1, description="torch threads when training on a CPU; None = torch's default")
    tokenizer: Path | None = Field(None, description="None = the base model's own tokenizer")
    seed: int = 0
