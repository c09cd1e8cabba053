"""What the converter needs to know about a Hugging Face decoder: family, shapes, rope.

llama.cpp runs llama and mistral checkpoints under its ``llama`` architecture with the
"normal" rope layout, so their q/k projections must be permuted; qwen2 uses the NEOX rope
layout, which is Hugging Face's own, so its weights go in unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ModelError

# config.model_type -> (GGUF architecture name, q/k rows need the rope permutation)
_FAMILIES: dict[str, tuple[str, bool]] = {
    "llama": ("llama", True),
    "mistral": ("llama", True),
    "qwen2": ("qwen2", False),
}


@dataclass(frozen=True)
class ModelShape:
    family: str
    gguf_arch: str
    permute_qk: bool
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    n_layers: int
    n_head: int
    n_kv_head: int
    head_dim: int
    context_length: int
    rms_norm_eps: float
    rope_theta: float
    rope_linear_factor: float | None
    tied_embeddings: bool


def _rope(config: dict[str, Any]) -> tuple[float, float | None]:
    """Rope base and linear scaling, from ``rope_parameters`` (transformers 5) or the older keys."""
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = params.get("rope_theta", config.get("rope_theta", 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind in (None, "default"):
        return float(theta), None
    if kind == "linear":
        return float(theta), float(params["factor"])
    raise ModelError(f"rope scaling '{kind}' is not supported by the GGUF converter")


def read_model_shape(model_dir: Path) -> ModelShape:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        raise ModelError(f"cannot read config.json in {model_dir}") from None
    family = str(config.get("model_type", ""))
    if family not in _FAMILIES:
        raise ModelError(f"model family '{family}' is not supported for GGUF export (llama, mistral, qwen2)")
    gguf_arch, permute = _FAMILIES[family]
    n_head = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    theta, linear = _rope(config)
    text_config = config.get("text_config") or {}
    return ModelShape(
        family=family,
        gguf_arch=gguf_arch,
        permute_qk=permute,
        vocab_size=int(config["vocab_size"]),
        hidden_size=hidden,
        intermediate_size=int(config["intermediate_size"]),
        n_layers=int(config["num_hidden_layers"]),
        n_head=n_head,
        n_kv_head=int(config.get("num_key_value_heads") or n_head),
        head_dim=int(config.get("head_dim") or hidden // n_head),
        context_length=int(config.get("max_position_embeddings", 2048)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        rope_linear_factor=linear,
        tied_embeddings=bool(config.get("tie_word_embeddings", text_config.get("tie_word_embeddings", False))),
    )


def rope_permute(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder each head's rows from the half-split rope layout to interleaved pairs.

    Hugging Face rotates dimension i with i + d/2; llama.cpp's normal rope rotates 2i with
    2i + 1. Within a head, row j of the first half and row j of the second half therefore
    have to become neighbours. Works on weights (out, in), biases (out,) and LoRA B (out, r).
    """
    head_rows = rows.shape[0] // n_heads
    grouped = rows.reshape(n_heads, 2, head_rows // 2, *rows.shape[1:])
    return grouped.swapaxes(1, 2).reshape(rows.shape)


def permutation_heads(shape: ModelShape, hf_name: str) -> int | None:
    """How many heads the rows of ``hf_name`` are permuted by, or None if left alone."""
    if not shape.permute_qk:
        return None
    if ".q_proj." in hf_name:
        return shape.n_head
    if ".k_proj." in hf_name:
        return shape.n_kv_head
    return None
