"""Gemma 3 text models (``gemma3_text``; the 1B, or the language half of the larger ones).

Gemma 2's quirks plus RMS norms on queries and keys (also ``(1 + weight)``), and two rope
configurations: sliding layers use a local base (10k), full layers a global base (1M) that
the 4B+ sizes scale linearly. llama.cpp applies the scaling only to its non-sliding layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.families.base import ModelShape, RopeScaling, RopeScalingKind, parse_rope
from appliance.families.gemma2 import Gemma2Family
from deid.errors import ModelError


class Gemma3Family(Gemma2Family):
    name = "gemma3"
    model_types = ("gemma3_text",)
    gguf_arch = "gemma3"
    wide_query_scale_layers = (62,)

    def read_rope(self, config: dict[str, Any]) -> RopeScaling:
        params = config.get("rope_parameters") or {}
        # transformers 5 nests one rope per layer type; older configs give the global one as rope_scaling.
        full = params.get("full_attention") if "full_attention" in params else (config.get("rope_scaling") or params)
        rope = parse_rope(dict(full or {}), float(config.get("rope_theta", 1_000_000.0)))
        if rope.kind not in (RopeScalingKind.NONE, RopeScalingKind.LINEAR):
            raise ModelError(f"gemma3: rope scaling '{rope.kind}' is not supported (linear only)")
        return rope

    def local_rope(self, shape: ModelShape) -> RopeScaling:
        params = (shape.setting("rope_parameters", {}) or {}).get("sliding_attention") or {}
        local = parse_rope(dict(params), float(shape.setting("rope_local_base_freq", 10_000.0)))
        if local.kind is not RopeScalingKind.NONE:
            raise ModelError("gemma3: scaled rope on sliding layers is not supported by llama.cpp")
        return local

    def folds_query_scale(self, hf_name: str) -> bool:
        """Queries pass an RMS norm after the projection: the fold goes into that norm's weight."""
        return ".self_attn.q_norm." in hf_name

    def transform_lora_b(self, hf_name: str, lora_b: np.ndarray, shape: ModelShape) -> np.ndarray:
        return lora_b  # q_norm renormalises the adapted query; no rope permutation either

    def check(self, shape: ModelShape) -> None:
        self.local_rope(shape)

    def write_metadata(self, writer: Any, shape: ModelShape) -> None:
        super().write_metadata(writer, shape)
        writer.add_rope_freq_base_swa(self.local_rope(shape).theta)
