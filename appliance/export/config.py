"""Typed settings of ``appliance export`` (merge, GGUF, quantize, parity gate)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from deid.errors import ConfigError

# llama.cpp file types the quantizer accepts by name (``LLAMA_FTYPE_MOSTLY_<name>``).
SUPPORTED_QUANTIZATIONS = (
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_0",
    "Q5_1",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_0",
    "Q4_1",
    "Q3_K_M",
    "Q3_K_S",
    "Q3_K_L",
    "Q2_K",
    "IQ4_NL",
    "IQ4_XS",
)


class ExportConfig(BaseModel):
    quantizations: list[str] = Field(default_factory=lambda: ["Q8_0", "Q4_K_M"])
    max_perplexity_increase: float = Field(
        0.10, ge=0.0, description="a quant whose held-out perplexity exceeds the reference by more is refused"
    )
    refused_quant_policy: Literal["drop", "fail"] = Field(
        "drop",
        description="drop: a refused quant is deleted and listed in parity.json; fail: the stage fails (GateError)",
    )
    reference_type: Literal["F32", "F16", "BF16"] = Field(
        "F32",
        description="type of the unquantized reference GGUF that parity is checked on and quants come from; "
        "F16 or BF16 halve its size and memory (advised for 7B and larger bases); parity then compares "
        "against transformers with its matrices rounded the same way",
    )
    parity_logit_tolerance: float = Field(
        0.005,
        gt=0.0,
        description="max |logit difference| between the reference GGUF and transformers, "
        "relative to the largest |logit| (at least 1)",
    )
    parity_greedy_tokens: int = Field(8, ge=1, description="greedy tokens that must be identical per probe")
    perplexity_max_tokens: int = Field(1024, ge=16, description="held-out tokens scored per quant")
    context_length: int = Field(512, ge=32, description="context used for parity and perplexity runs")
    threads: int | None = Field(None, ge=1, description="llama.cpp threads; None = all cores")
    export_adapter: bool = Field(True, description="also write the LoRA adapter alone as a GGUF adapter")

    @field_validator("quantizations")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        normalized = [item.strip().upper() for item in value]
        unknown = sorted(set(normalized) - set(SUPPORTED_QUANTIZATIONS))
        if unknown:
            raise ValueError(f"unknown quantization type(s) {unknown}; choose from {list(SUPPORTED_QUANTIZATIONS)}")
        return list(dict.fromkeys(normalized))

    def updated(self, **changes: Any) -> ExportConfig:
        """A validated copy with command-line overrides; a bad value is a ConfigError naming the field."""
        try:
            return ExportConfig.model_validate({**self.model_dump(), **changes})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
            raise ConfigError(f"invalid export option: {problems}") from None
