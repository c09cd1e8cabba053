"""Llama (1-3.x) and Mistral: llama.cpp's ``llama`` architecture with the normal rope layout.

Mistral's sliding window is not applied by llama.cpp's llama architecture; every released
Mistral with one has a window of 4096 or more, so prompts shorter than that agree exactly.
"""

from __future__ import annotations

from appliance.families.base import ModelFamily, RopeLayout

LLAMA_LIKE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LlamaFamily(ModelFamily):
    name = "llama"
    model_types = ("llama",)
    lora_targets = LLAMA_LIKE_TARGETS
    gguf_arch = "llama"
    rope_layout = RopeLayout.NORMAL


class MistralFamily(LlamaFamily):
    name = "mistral"
    model_types = ("mistral",)
