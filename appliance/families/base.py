"""What training and export need to know about one Hugging Face decoder family.

A family says which ``config.model_type`` values it covers, which modules LoRA adapts, and
(when llama.cpp can run it) how its checkpoint becomes a GGUF: the architecture name, the
per-tensor transforms and the extra metadata. Everything shape-like is read once from
``config.json`` into a :class:`ModelShape`, so the converter never re-parses the config.
"""

from __future__ import annotations

import json
import math
from abc import ABC
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deid.errors import ModelError


class RopeLayout(StrEnum):
    """How rotary pairs are laid out: llama.cpp's "normal" rope pairs neighbours, NEOX pairs halves."""

    NORMAL = "normal"  # Hugging Face's half-split q/k rows must be permuted into neighbour pairs
    NEOX = "neox"  # Hugging Face's own layout; weights go in unchanged


class RopeScalingKind(StrEnum):
    NONE = "none"
    LINEAR = "linear"
    YARN = "yarn"
    LLAMA3 = "llama3"


@dataclass(frozen=True)
class RopeScaling:
    """One rope configuration (base and scaling), as Hugging Face's ``rope_parameters`` give it."""

    theta: float
    kind: RopeScalingKind = RopeScalingKind.NONE
    factor: float = 1.0
    original_context: int | None = None
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    beta_fast: float | None = None
    beta_slow: float | None = None
    attention_factor: float | None = None


@dataclass(frozen=True)
class ModelShape:
    """The hyper-parameters of one checkpoint that the GGUF header and the transforms need."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    n_layers: int
    n_head: int
    n_kv_head: int
    head_dim: int
    rope_dims: int
    context_length: int
    rms_norm_eps: float
    rope: RopeScaling
    tied_embeddings: bool
    config: dict[str, Any] = field(repr=False, compare=False)

    def setting(self, key: str, default: Any = None) -> Any:
        """A raw config value, for the few family quirks that need one."""
        value = self.config.get(key)
        return default if value is None else value


_ROPE_KINDS = {
    None: RopeScalingKind.NONE,
    "default": RopeScalingKind.NONE,
    "linear": RopeScalingKind.LINEAR,
    "yarn": RopeScalingKind.YARN,
    "llama3": RopeScalingKind.LLAMA3,
}


def parse_rope(params: dict[str, Any], fallback_theta: float) -> RopeScaling:
    """A :class:`RopeScaling` from one ``rope_parameters`` (or older ``rope_scaling``) dict."""
    kind_name = params.get("rope_type", params.get("type"))
    if kind_name not in _ROPE_KINDS:
        raise ModelError(f"rope scaling '{kind_name}' is not supported by the GGUF converter (linear, yarn, llama3)")
    kind = _ROPE_KINDS[kind_name]
    original = params.get("original_max_position_embeddings")
    return RopeScaling(
        theta=float(params.get("rope_theta", fallback_theta)),
        kind=kind,
        factor=float(params.get("factor", 1.0)) if kind is not RopeScalingKind.NONE else 1.0,
        original_context=int(original) if original else None,
        low_freq_factor=float(params.get("low_freq_factor", 1.0)),
        high_freq_factor=float(params.get("high_freq_factor", 4.0)),
        beta_fast=float(params["beta_fast"]) if params.get("beta_fast") is not None else None,
        beta_slow=float(params["beta_slow"]) if params.get("beta_slow") is not None else None,
        attention_factor=float(params["attention_factor"]) if params.get("attention_factor") is not None else None,
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


def read_config(model_dir: Path) -> dict[str, Any]:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        raise ModelError(f"cannot read config.json in {model_dir}") from None
    if not isinstance(config, dict):
        raise ModelError(f"config.json in {model_dir} is not an object")
    return config


class ModelFamily(ABC):
    """One registered family. Subclasses set the class attributes and override the hooks they need.

    The defaults describe a llama-like decoder that llama.cpp runs with NEOX rope; a family
    only states where it differs, so each module reads as the list of its quirks.
    """

    name: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    lora_targets: ClassVar[tuple[str, ...]]
    exportable: ClassVar[bool] = True
    gguf_arch: ClassVar[str] = ""
    rope_layout: ClassVar[RopeLayout] = RopeLayout.NEOX
    # How much looser than the configured parity tolerance this family's logits may be.
    parity_tolerance_scale: ClassVar[float] = 1.0
    # Tensors whose names end so are not weights llama.cpp reads (rotary caches).
    skipped_suffixes: ClassVar[tuple[str, ...]] = ("rotary_emb.inv_freq",)

    def read_shape(self, config: dict[str, Any]) -> ModelShape:
        """The shape from a ``config.json`` of this family (transformers 5 or older key names)."""
        n_head = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        head_dim = int(config.get("head_dim") or hidden // n_head)
        rope = self.read_rope(config)
        partial = float((config.get("rope_parameters") or {}).get("partial_rotary_factor") or
                        config.get("partial_rotary_factor") or 1.0)
        return ModelShape(
            model_type=str(config.get("model_type")),
            vocab_size=int(config["vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(config["intermediate_size"]),
            n_layers=int(config["num_hidden_layers"]),
            n_head=n_head,
            n_kv_head=int(config.get("num_key_value_heads") or n_head),
            head_dim=head_dim,
            rope_dims=int(head_dim * partial),
            context_length=int(config.get("max_position_embeddings", 2048)),
            rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
            rope=rope,
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            config=config,
        )

    def read_rope(self, config: dict[str, Any]) -> RopeScaling:
        params = config.get("rope_parameters") or config.get("rope_scaling") or {}
        return parse_rope(params, float(config.get("rope_theta", 10000.0)))

    def check(self, shape: ModelShape) -> None:  # noqa: B027 - an optional hook: most families have no quirk
        """Refuse, before anything is written, a checkpoint whose quirks llama.cpp would get wrong."""

    def write_metadata(self, writer: Any, shape: ModelShape) -> None:  # noqa: B027 - optional, as check
        """Family-specific GGUF keys beyond the common header (softcaps, windows, ...)."""

    def transform(self, hf_name: str, array: np.ndarray, shape: ModelShape) -> np.ndarray:
        """A weight as llama.cpp wants it; the default permutes q/k rows for the normal rope layout."""
        heads = self.permutation_heads(hf_name, shape)
        return rope_permute(array, heads) if heads is not None else array

    def transform_lora_b(self, hf_name: str, lora_b: np.ndarray, shape: ModelShape) -> np.ndarray:
        """A LoRA B matrix gets the row order of the weight it adds to; norm offsets never apply."""
        heads = self.permutation_heads(hf_name, shape)
        return rope_permute(lora_b, heads) if heads is not None else lora_b

    def permutation_heads(self, hf_name: str, shape: ModelShape) -> int | None:
        if self.rope_layout is not RopeLayout.NORMAL:
            return None
        if ".q_proj." in hf_name:
            return shape.n_head
        if ".k_proj." in hf_name:
            return shape.n_kv_head
        return None

    def extra_tensors(self, shape: ModelShape) -> list[tuple[str, np.ndarray]]:
        """Tensors llama.cpp needs that the checkpoint does not hold (llama3 rope frequency factors)."""
        return llama3_rope_factors(shape)


def llama3_rope_factors(shape: ModelShape) -> list[tuple[str, np.ndarray]]:
    """llama.cpp applies Llama 3.1 rope scaling as per-frequency divisors in ``rope_freqs``.

    The divisors are the ratio of the plain inverse frequencies to the ones transformers
    computes for ``rope_type: llama3``, so both sides rotate by the same angles.
    """
    rope = shape.rope
    if rope.kind is not RopeScalingKind.LLAMA3:
        return []
    if rope.original_context is None:
        raise ModelError("llama3 rope scaling without original_max_position_embeddings")
    exponents = np.arange(0, shape.rope_dims, 2, dtype=np.float64) / shape.rope_dims
    inv_freq = 1.0 / (rope.theta**exponents)
    wavelength = 2 * math.pi / inv_freq
    low_wavelength = rope.original_context / rope.low_freq_factor
    high_wavelength = rope.original_context / rope.high_freq_factor
    smooth = (rope.original_context / wavelength - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    scaled = np.where(wavelength > low_wavelength, inv_freq / rope.factor, inv_freq)
    middle = (wavelength <= low_wavelength) & (wavelength >= high_wavelength)
    scaled = np.where(middle, (1 - smooth) * inv_freq / rope.factor + smooth * inv_freq, scaled)
    return [("rope_freqs.weight", (inv_freq / scaled).astype(np.float32))]
