"""Typed settings of ``appliance export`` (merge, GGUF, quantize, parity gate)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExportConfig(BaseModel):
    quantizations: list[str] = Field(default_factory=lambda: ["Q8_0", "Q4_K_M"])
    max_perplexity_increase: float = Field(0.10, ge=0.0)
