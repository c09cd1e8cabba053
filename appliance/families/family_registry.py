"""The one list of model families, shared by training (LoRA targets, the exportability check)
and export (the converter). A ``model_type`` missing here trains with peft's ``all-linear``
targets and is refused by export; registered but non-exportable families train with known
targets and are refused by export with the reason.
"""

from __future__ import annotations

from pathlib import Path

from appliance.families.base import ModelFamily, ModelShape, read_config
from appliance.families.gemma2 import Gemma2Family
from appliance.families.gemma3 import Gemma3Family
from appliance.families.llama import LLAMA_LIKE_TARGETS, LlamaFamily, MistralFamily
from appliance.families.phi3 import Phi3Family
from appliance.families.qwen2 import Qwen2Family
from appliance.families.qwen3 import Qwen3Family
from deid.errors import ModelError


class _TrainOnly(ModelFamily):
    """A family training knows (its LoRA targets) that the GGUF converter does not handle."""

    exportable = False


class MixtralFamily(_TrainOnly):
    name = "mixtral"
    model_types = ("mixtral",)
    lora_targets = ("q_proj", "k_proj", "v_proj", "o_proj")


class GemmaFamily(_TrainOnly):
    name = "gemma"
    model_types = ("gemma",)
    lora_targets = LLAMA_LIKE_TARGETS


class Gpt2Family(_TrainOnly):
    name = "gpt2"
    model_types = ("gpt2",)
    lora_targets = ("c_attn", "c_proj", "c_fc")


FAMILIES: tuple[ModelFamily, ...] = (
    LlamaFamily(),
    MistralFamily(),
    Qwen2Family(),
    Qwen3Family(),
    Gemma2Family(),
    Gemma3Family(),
    Phi3Family(),
    MixtralFamily(),
    GemmaFamily(),
    Gpt2Family(),
)

_BY_MODEL_TYPE: dict[str, ModelFamily] = {kind: family for family in FAMILIES for kind in family.model_types}

# peft's own choice when a family is unknown: every linear layer except the output head.
FALLBACK_LORA_TARGETS = ("all-linear",)


def find_family(model_type: str) -> ModelFamily | None:
    return _BY_MODEL_TYPE.get(model_type.lower())


def exportable_model_types() -> list[str]:
    return sorted(kind for family in FAMILIES if family.exportable for kind in family.model_types)


def lora_targets(model_type: str) -> list[str]:
    family = find_family(model_type)
    return list(family.lora_targets if family else FALLBACK_LORA_TARGETS)


def export_family(model_type: str) -> ModelFamily:
    """The family that exports ``model_type``, or a ModelError that names what can be exported."""
    family = find_family(model_type)
    if family is None or not family.exportable:
        known = "registered but not exportable" if family else "unknown"
        raise ModelError(
            f"model family '{model_type}' ({known}) is not supported for GGUF export; "
            f"exportable: {', '.join(exportable_model_types())}"
        )
    return family


def read_export_shape(model_dir: Path) -> tuple[ModelFamily, ModelShape]:
    """The family and shape of the checkpoint in ``model_dir``, checked for what llama.cpp can run."""
    config = read_config(model_dir)
    family = export_family(str(config.get("model_type", "")))
    shape = family.read_shape(config)
    family.check(shape)
    return family, shape


def check_exportable(model_dir: Path) -> ModelFamily:
    """Raise ModelError unless export could carry the base in ``model_dir`` to a GGUF.

    Training calls this before it spends hours on a base that could never be served.
    """
    return read_export_shape(model_dir)[0]


def require_exportable_base(base_model: Path, *, allow_unexportable: bool) -> ModelFamily | None:
    """Refuse, before training starts, a Hugging Face base that export could not carry to a GGUF.

    ``allow_unexportable`` (``train.allow_unexportable``) trains it anyway, for adapters used
    with transformers only. A ``.gguf`` base came from llama.cpp, so it is exportable by origin.
    """
    if not base_model.is_dir():
        return None
    try:
        return check_exportable(base_model)
    except ModelError as error:
        if allow_unexportable:
            return None
        raise ModelError(f"{error}; set train.allow_unexportable = true to train it anyway") from None
