"""Make a real peft LoRA adapter for a test model, with non-zero B so that merging changes the output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj")


def make_lora_adapter(
    model_dir: Path, destination: Path, *, seed: int = 1, scale: float = 0.05, targets: Sequence[str] = DEFAULT_TARGETS
) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=list(targets)
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, scale)
    peft_model.save_pretrained(destination)
    return destination
