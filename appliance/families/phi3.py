"""Phi-3 / Phi-3.5 / Phi-4-mini: fused projections, NEOX rope, optional partial rotary dims.

``qkv_proj`` and ``gate_up_proj`` stay fused: llama.cpp's phi3 graph splits them itself,
so they map to ``attn_qkv`` and a double-width ``ffn_up``. LongRoPE (the 128k variants)
needs per-frequency factor tensors that differ for short and long prompts; it is refused.
llama.cpp's phi3 graph ignores a sliding window (Phi-3-mini's is 2047 tokens), so none is
written; prompts shorter than the window agree exactly.
"""

from __future__ import annotations

from typing import Any

from appliance.families.base import ModelFamily, RopeScaling
from deid.errors import ModelError


class Phi3Family(ModelFamily):
    name = "phi3"
    model_types = ("phi3",)
    lora_targets = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
    gguf_arch = "phi3"

    def read_rope(self, config: dict[str, Any]) -> RopeScaling:
        params = config.get("rope_parameters") or config.get("rope_scaling") or {}
        if params.get("rope_type", params.get("type")) in ("longrope", "su"):
            raise ModelError("Phi-3 LongRoPE (128k context) checkpoints are not supported for GGUF export")
        return super().read_rope(config)
