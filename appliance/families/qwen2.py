"""Qwen 2 / 2.5: llama-like with q/k/v biases and the NEOX rope layout (Hugging Face's own)."""

from __future__ import annotations

from appliance.families.base import ModelFamily
from appliance.families.llama import LLAMA_LIKE_TARGETS


class Qwen2Family(ModelFamily):
    name = "qwen2"
    model_types = ("qwen2",)
    lora_targets = LLAMA_LIKE_TARGETS
    gguf_arch = "qwen2"
