"""Qwen 3: Qwen 2 without biases, with RMS norms on each head's queries and keys (q_norm, k_norm)."""

from __future__ import annotations

from appliance.families.base import ModelFamily
from appliance.families.llama import LLAMA_LIKE_TARGETS


class Qwen3Family(ModelFamily):
    name = "qwen3"
    model_types = ("qwen3",)
    lora_targets = LLAMA_LIKE_TARGETS
    gguf_arch = "qwen3"
