"""Typed settings of ``appliance dataset build``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DatasetConfig(BaseModel):
    context_length: int = Field(512, ge=32)
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    max_residual_phi_per_1k_tokens: float = Field(0.5, ge=0.0)
    seed: int = 0
