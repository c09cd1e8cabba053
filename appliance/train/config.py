"""Typed settings of ``appliance train`` (LoRA).

Defaults suit the demo: the embedded 135M model on two CPU cores, a handful of steps of
batch 4 x 256 tokens. A GPU server raises ``max_steps`` and ``batch_size`` in its settings.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, model_validator


class Method(StrEnum):
    """The survey's training paradigms; each runs as its own stage."""

    cpt = "cpt"  # continued pretraining: the dataset's plain text, every token learned
    sft = "sft"  # instruction tuning: the dataset's chats, only assistant turns learned
    dpo = "dpo"  # preference alignment on {"prompt", "chosen", "rejected"} pairs


class TrainMode(StrEnum):
    auto = "auto"  # SFT when the set holds chat examples, else continued pretraining
    pretrain = "pretrain"
    sft = "sft"


class Schedule(StrEnum):
    cosine = "cosine"
    linear = "linear"
    constant = "constant"


class Precision(StrEnum):
    auto = "auto"  # bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on a CPU
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Attention(StrEnum):
    sdpa = "sdpa"  # torch's fused scaled-dot-product kernels (flash / memory-efficient on a GPU)
    eager = "eager"
    flash_attention_2 = "flash_attention_2"  # needs the flash-attn package


class Sharding(StrEnum):
    """How the processes of a ``torchrun`` / ``accelerate launch`` run hold the model; one process holds it all."""

    none = "none"  # every process a full replica, gradients averaged (DDP)
    fsdp = "fsdp"  # parameters, gradients and optimizer state split across processes (torch FSDP2)


class Overlong(StrEnum):
    error = "error"
    truncate = "truncate"
    drop = "drop"


class TrainConfig(BaseModel):
    mode: TrainMode = Field(TrainMode.auto, description="what 'appliance train' without --method and recipe trains")
    recipe: list[Method] = Field(
        default_factory=list,
        description="stages 'appliance train' runs in order, each from the previous adapter, e.g. [cpt, sft, dpo]; "
        "empty = one stage trained per `mode`",
    )
    start_from: Path | None = Field(
        None, description="adapter folder to continue, or merged model folder to use as base; None = the previous "
        "stage's adapter in the work directory (cpt before sft, sft before dpo) when there is one",
    )
    replay: Path | None = Field(
        None, description="instruction JSONL whose examples replace the dataset's replay examples (which the "
        "dataset stage draws from the shipped appliance/dataset/replay.jsonl); None = keep those",
    )
    dpo_beta: float = Field(
        0.1, gt=0, description="DPO temperature: how far the policy may move from the reference; 0.1 with the "
        "LoRA learning_rate moves every held-out reward within an epoch of MedQuAD pairs (bench.dpo_medquad)",
    )
    dpo_holdout: float = Field(0.2, gt=0, lt=1, description="share of preference pairs held out for accuracy")
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | None = Field(None, description="None = chosen per architecture")
    allow_unexportable: bool = Field(
        False, description="train a base whose family GGUF export cannot carry (the adapter then serves only "
        "through transformers); false = refuse it before training"
    )
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_steps: int = Field(4, ge=1, description="optimizer steps")
    batch_size: int = Field(4, ge=1, description="examples (a chat, or a full window of text) per process per micro-step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_seq_length: int = Field(256, ge=8)
    packing: bool = Field(True, description="plain text flows into full windows instead of one padded row per text")
    group_by_length: bool = Field(True, description="batch examples of similar length, so rows carry little padding")
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
    sharding: Sharding = Field(
        Sharding.none, description="fsdp: each process keeps 1/N of the weights (frozen base and LoRA), gathering "
        "one decoder layer at a time, for a base that does not fit one GPU; none = DDP replicas",
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward: less memory, ~30% slower")
    attention: Attention = Attention.sdpa
    cpu_threads: int | None = Field(None, ge=1, description="torch threads when training on a CPU; None = torch's default")
    tokenizer: Path | None = Field(None, description="None = the base model's own tokenizer")
    seed: int = 0

    @model_validator(mode="after")
    def _shardable(self) -> TrainConfig:
        # FSDP flattens and splits each weight; bitsandbytes' packed 4-bit weights are not plain tensors to split
        if self.sharding is Sharding.fsdp and self.qlora:
            raise ValueError("train.sharding = fsdp cannot split a 4-bit (qlora) base; set qlora = false or sharding = none")
        return self
