"""Load a local base model (Hugging Face directory or GGUF file) for training or export.

GGUF files are dequantized by transformers into ordinary float weights. transformers then
still marks the model as "quantized with gguf", which makes ``save_pretrained`` refuse; we
clear that mark because the weights in memory are plain floats. Nothing is ever fetched
from a hub: every load is ``local_files_only``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from appliance.families.family_registry import lora_targets
from deid.errors import ModelError
from serve.engine.gguf_file import check_gguf_file


@dataclass
class LoadedBase:
    """A base model ready for LoRA: the model, its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    architecture: str
    source_path: Path


def default_target_modules(architecture: str) -> list[str]:
    """LoRA target modules for a model family (``config.model_type``), from the family registry.

    Unknown families fall back to ``all-linear``, peft's own choice of every linear layer
    except the output head, which works for any decoder without knowing its names.
    """
    return lora_targets(architecture)


def load_base_model(
    path: Path, *, dtype: torch.dtype = torch.float32, quantize_4bit: bool = False, device_index: int = 0,
    attention: str | None = None,
) -> LoadedBase:
    """Load ``path`` (HF directory with safetensors, or a ``.gguf`` file) with its tokenizer.

    ``quantize_4bit`` loads the base in NF4 for QLoRA; bitsandbytes is imported only then,
    and it needs a CUDA GPU. ``attention`` picks transformers' attention kernel (None = its default).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.exists():
        raise ModelError(f"base model path does not exist: {path}")
    if path.is_dir():
        _check_hf_directory(path)
        location, extra = str(path), {}
    else:
        check_gguf_file(path)
        location, extra = str(path.parent), {"gguf_file": path.name}
    model_options = _four_bit_options(dtype, device_index) if quantize_4bit else {}
    if attention is not None:
        model_options["attn_implementation"] = attention
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True, **extra)
        model = AutoModelForCausalLM.from_pretrained(
            location, local_files_only=True, dtype=dtype, **extra, **model_options
        )
    except Exception as error:  # noqa: BLE001 - loaders raise many types (SafetensorError, ...) for bad files
        raise ModelError(f"cannot load base model {path}: {type(error).__name__}: {_short(error)}") from None
    if "gguf_file" in extra:
        _clear_gguf_quantization_mark(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    architecture = str(getattr(model.config, "model_type", "unknown"))
    return LoadedBase(model=model, tokenizer=tokenizer, architecture=architecture, source_path=path)


def _four_bit_options(dtype: torch.dtype, device_index: int) -> dict[str, Any]:
    if not torch.cuda.is_available():
        raise ModelError("QLoRA (4-bit base) needs a CUDA GPU; set train.qlora = false on this machine")
    try:
        import bitsandbytes  # noqa: F401 - presence check; transformers drives it
    except ImportError:
        raise ModelError("QLoRA needs the bitsandbytes package, which is not installed") from None
    from transformers import BitsAndBytesConfig

    compute = dtype if dtype in (torch.bfloat16, torch.float16) else torch.bfloat16
    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )
    return {"quantization_config": config, "device_map": {"": device_index}}


def _check_hf_directory(path: Path) -> None:
    config = path / "config.json"
    if not config.is_file():
        raise ModelError(f"not a Hugging Face model directory (no config.json): {path}")
    try:
        json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"corrupt config.json in model directory: {path}") from None
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelError(f"no weights (*.safetensors) in model directory: {path}")


def _clear_gguf_quantization_mark(model: Any) -> None:
    """The weights are dequantized floats; drop the flag that blocks ``save_pretrained``."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if hasattr(model, "quantization_method"):
        model.quantization_method = None


def _short(error: BaseException) -> str:
    """First line of a library error: they name files and keys, never record text."""
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""
