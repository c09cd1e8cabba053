"""Gemma 2: tied embeddings scaled by sqrt(hidden), ``(1 + weight)`` RMS norms, four norms per
layer, tanh soft-capping of attention scores and final logits, and every other layer sliding.

llama.cpp scales the embeddings and caps the logits itself from the metadata; the norms
are stored with the one added, because llama.cpp multiplies by the stored weight. It scales
queries by 1/sqrt(head_dim), except for the 46-layer (27B) size, where it uses
1/sqrt(hidden / heads), and reads no key for it. A checkpoint whose ``query_pre_attn_scalar``
differs gets the ratio folded into its query weights (and into LoRA B of ``q_proj``), so
llama.cpp's fixed scale yields the checkpoint's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.families.base import ModelFamily, ModelShape
from appliance.families.llama import LLAMA_LIKE_TARGETS
from deid.errors import ModelError


class Gemma2Family(ModelFamily):
    name = "gemma2"
    model_types = ("gemma2",)
    lora_targets = LLAMA_LIKE_TARGETS
    gguf_arch = "gemma2"
    # ggml evaluates GELU through an F16 lookup table, so F32 logits drift about 4x more than with SiLU.
    parity_tolerance_scale = 4.0
    # Layers of this size get llama.cpp's other query scale (see the module docstring).
    wide_query_scale_layers: tuple[int, ...] = (46,)

    # transformers' default when a config leaves query_pre_attn_scalar out.
    default_query_scalar = 256.0

    def query_fold(self, shape: ModelShape) -> float:
        """The factor on queries that turns llama.cpp's 1/sqrt(d) into the checkpoint's 1/sqrt(scalar)."""
        scalar = float(shape.setting("query_pre_attn_scalar", self.default_query_scalar))
        if scalar <= 0:
            raise ModelError(f"{self.name}: query_pre_attn_scalar must be positive")
        used = shape.hidden_size / shape.n_head if shape.n_layers in self.wide_query_scale_layers else shape.head_dim
        return float(np.sqrt(used / scalar))

    def folds_query_scale(self, hf_name: str) -> bool:
        """Gemma 2 scales the query projection; a later RMS norm would undo that (see Gemma 3)."""
        return ".self_attn.q_proj." in hf_name

    def read_shape(self, config: dict[str, Any]) -> ModelShape:
        # Gemma ties embeddings unless the config says otherwise, and transformers' default is to tie.
        return super().read_shape({**config, "tie_word_embeddings": config.get("tie_word_embeddings", True)})

    def write_metadata(self, writer: Any, shape: ModelShape) -> None:
        for key, add in (
            ("attn_logit_softcapping", writer.add_attn_logit_softcapping),
            ("final_logit_softcapping", writer.add_final_logit_softcapping),
        ):
            if shape.setting(key) is not None:
                add(float(shape.setting(key)))
        if shape.setting("sliding_window"):
            writer.add_sliding_window(int(shape.setting("sliding_window")))
        self.write_layer_types(writer, shape)

    def write_layer_types(self, writer: Any, shape: ModelShape) -> None:
        """Which layers slide, one flag per layer, as transformers reads them from ``layer_types``."""
        types = shape.setting("layer_types")
        if types:
            writer.add_sliding_window_pattern([kind == "sliding_attention" for kind in types])

    def transform(self, hf_name: str, array: np.ndarray, shape: ModelShape) -> np.ndarray:
        if hf_name.endswith("norm.weight"):
            array = array + 1.0
        if self.folds_query_scale(hf_name):
            array = array * self.query_fold(shape)
        return super().transform(hf_name, array, shape)

    def transform_lora_b(self, hf_name: str, lora_b: np.ndarray, shape: ModelShape) -> np.ndarray:
        if self.folds_query_scale(hf_name):
            lora_b = lora_b * self.query_fold(shape)
        return super().transform_lora_b(hf_name, lora_b, shape)
