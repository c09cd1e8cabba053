"""Write a peft LoRA adapter as a GGUF adapter that llama.cpp applies on top of the base.

llama.cpp scales ``B @ A`` by ``alpha / r`` like peft; rsLoRA's ``alpha / sqrt(r)`` is
expressed by writing ``alpha * sqrt(r)``. ``B``'s rows get the same rope permutation as the
q/k weights they modify, or the served adapter would add its update to the wrong rows; the
family decides that, as it does for the base weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from appliance.export.gguf_convert import gguf_tensor_name, iter_safetensors
from appliance.families.family_registry import read_export_shape
from deid.errors import ModelError

_PREFIX = "base_model.model."


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError):
        raise ModelError(f"not a LoRA adapter directory (no readable adapter_config.json): {adapter_dir}") from None
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise ModelError(f"adapter type {config.get('peft_type')!r} is not LoRA")
    if config.get("use_dora"):
        raise ModelError("DoRA adapters cannot be exported as GGUF adapters")
    return config


def _split_lora_name(key: str) -> tuple[str, str] | None:
    """``base_model.model.X.lora_A.weight`` -> (``X.weight``, ``lora_a``)."""
    for marker, suffix in ((".lora_A.weight", "lora_a"), (".lora_B.weight", "lora_b")):
        if key.endswith(marker):
            module = key[: -len(marker)]
            return (module[len(_PREFIX) :] if module.startswith(_PREFIX) else module) + ".weight", suffix
    return None


def convert_lora_to_gguf(adapter_dir: Path, base_model_dir: Path, destination: Path) -> int:
    """Write ``destination``; returns the number of adapted modules. ``base_model_dir`` gives the shapes."""
    config = read_adapter_config(adapter_dir)
    family, shape = read_export_shape(base_model_dir)
    rank = int(config.get("r", 8))
    alpha = float(config.get("lora_alpha", rank))
    if config.get("use_rslora"):
        alpha *= math.sqrt(rank)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[family.gguf_arch.upper()], shape.n_layers)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, array in iter_safetensors(adapter_dir):
        split = _split_lora_name(key)
        if split is None:
            raise ModelError(f"adapter tensor '{key}' is not a LoRA A/B matrix (modules_to_save is not supported)")
        pairs.setdefault(split[0], {})[split[1]] = array
    writer = gguf.GGUFWriter(destination, family.gguf_arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for hf_name, parts in sorted(pairs.items()):
        if set(parts) != {"lora_a", "lora_b"}:
            raise ModelError(f"adapter module '{hf_name}' lacks its A or B matrix")
        lora_b = family.transform_lora_b(hf_name, parts["lora_b"], shape)
        target = gguf_tensor_name(name_map, hf_name)
        writer.add_tensor(f"{target}.lora_a", parts["lora_a"].astype(np.float32))
        writer.add_tensor(f"{target}.lora_b", lora_b.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(pairs)
