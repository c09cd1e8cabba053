"""Typed settings of ``appliance train`` (LoRA)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TrainConfig(BaseModel):
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None
    learning_rate: float = Field(2e-4, gt=0)
    max_steps: int = Field(20, ge=1)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    seed: int = 0
