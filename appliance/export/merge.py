"""Merge a LoRA adapter into the full-precision base and save it as safetensors.

The merge happens on float32 weights loaded from the base (a GGUF base is dequantized
first). Merging into a 4-bit model would round the update away, so such a base is refused.
Non-finite weights after merging mean a diverged adapter; nothing is written then.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from appliance.export.lora_gguf import read_adapter_config
from appliance.train.base_model import load_base_model
from deid.errors import GateError, ModelError


@dataclass(frozen=True)
class MergeResult:
    directory: Path
    architecture: str
    parameters: int
    adapted_modules: int


def nonfinite_tensors(model: torch.nn.Module) -> list[str]:
    return [name for name, tensor in model.state_dict().items() if not torch.isfinite(tensor).all()]


def merge_adapter(base_model: Path, adapter_dir: Path | None, destination: Path) -> MergeResult:
    """Write the merged (or, without an adapter, the plain base) model into ``destination``."""
    loaded = load_base_model(base_model, dtype=torch.float32)
    model = loaded.model
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        raise ModelError("refusing to merge into a quantized base; load the unquantized base model")
    adapted = 0
    if adapter_dir is not None:
        from peft import PeftModel

        read_adapter_config(adapter_dir)
        try:
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        except (ValueError, RuntimeError, OSError, KeyError) as error:
            raise ModelError(f"adapter {adapter_dir} does not fit the base model: {type(error).__name__}") from None
        adapted = sum(1 for name, _ in peft_model.named_modules() if name.endswith("lora_A"))
        model = peft_model.merge_and_unload()
    bad = nonfinite_tensors(model)
    if bad:
        raise GateError(f"merged weights hold NaN or inf in {len(bad)} tensor(s) (first: {bad[0]}); nothing written")
    destination.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(destination, safe_serialization=True)
    loaded.tokenizer.save_pretrained(destination)
    return MergeResult(
        directory=destination,
        architecture=loaded.architecture,
        parameters=sum(p.numel() for p in model.parameters()),
        adapted_modules=adapted,
    )
