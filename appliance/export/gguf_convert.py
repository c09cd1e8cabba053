"""Our Hugging Face -> GGUF converter for every exportable family of ``appliance.families``.

Memory stays at about one tensor: the tensor directory is laid out first from the
safetensors headers (names, shapes, output types), then each tensor is read, transformed
by its family, converted and written before the next one is read. Vectors (norms, biases,
rope factors) stay F32 because llama.cpp expects them so; matrices take the requested type.
The file appears under its name only when complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import gguf
import numpy as np

from appliance.export.tokenizer_gguf import read_tokenizer, write_tokenizer
from appliance.families.base import ModelFamily, ModelShape, RopeScalingKind
from appliance.families.family_registry import read_export_shape
from deid.errors import ModelError


class TensorType(StrEnum):
    """Types the unquantized GGUF may hold its matrices in."""

    F32 = "F32"
    F16 = "F16"
    BF16 = "BF16"


_FILE_TYPES = {
    TensorType.F32: gguf.LlamaFileType.ALL_F32,
    TensorType.F16: gguf.LlamaFileType.MOSTLY_F16,
    TensorType.BF16: gguf.LlamaFileType.MOSTLY_BF16,
}


@dataclass(frozen=True)
class ConversionResult:
    path: Path
    architecture: str
    tensors: int
    pre_tokenizer: str
    add_bos: bool


def _weight_files(model_dir: Path) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ModelError(f"no *.safetensors weights in {model_dir}")
    return files


def iter_safetensors(model_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of a checkpoint as float32 numpy, one at a time (bf16 goes through torch)."""
    from safetensors import safe_open

    for file in _weight_files(model_dir):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield name, handle.get_tensor(name).float().numpy()


def safetensors_shapes(model_dir: Path) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes from the safetensors headers only: no tensor data is read."""
    from safetensors import safe_open

    found: list[tuple[str, tuple[int, ...]]] = []
    for file in _weight_files(model_dir):
        with safe_open(str(file), framework="pt") as handle:
            found.extend((name, tuple(handle.get_slice(name).get_shape())) for name in handle.keys())  # noqa: SIM118
    return found


def gguf_tensor_name(name_map: gguf.TensorNameMap, hf_name: str) -> str:
    mapped = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if mapped is None:
        raise ModelError(f"tensor '{hf_name}' has no GGUF name for this architecture")
    return mapped


def _write_rope(writer: gguf.GGUFWriter, shape: ModelShape) -> None:
    rope = shape.rope
    writer.add_rope_freq_base(rope.theta)
    writer.add_rope_dimension_count(shape.rope_dims)
    if rope.kind is RopeScalingKind.LINEAR:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rope.factor)
    elif rope.kind is RopeScalingKind.YARN:
        if shape.setting("rope_parameters", {}).get("truncate") is False:
            raise ModelError("yarn rope with truncate=false is not supported by llama.cpp")
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(rope.factor)
        writer.add_rope_scaling_orig_ctx_len(rope.original_context or shape.context_length)
        if rope.beta_fast is not None:
            writer.add_rope_scaling_yarn_beta_fast(rope.beta_fast)
        if rope.beta_slow is not None:
            writer.add_rope_scaling_yarn_beta_slow(rope.beta_slow)
        if rope.attention_factor is not None:
            # llama.cpp multiplies its own default (0.1 ln(factor) + 1) by this key.
            default = 0.1 * math.log(rope.factor) + 1.0 if rope.factor > 1 else 1.0
            writer.add_rope_scaling_attn_factors(rope.attention_factor / default)
    # llama3 scaling travels as the rope_freqs tensor (ModelFamily.extra_tensors).


def _write_hparams(writer: gguf.GGUFWriter, family: ModelFamily, shape: ModelShape, name: str, out_type: TensorType) -> None:
    writer.add_name(name)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.hidden_size)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.intermediate_size)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_kv_head)
    writer.add_layer_norm_rms_eps(shape.rms_norm_eps)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    _write_rope(writer, shape)
    family.write_metadata(writer, shape)
    writer.add_vocab_size(shape.vocab_size)
    writer.add_file_type(_FILE_TYPES[out_type])


def _stored_type(ndim: int, out_type: TensorType) -> gguf.GGMLQuantizationType:
    """Vectors stay F32 whatever the file type: llama.cpp adds and multiplies them in F32."""
    if ndim <= 1:
        return gguf.GGMLQuantizationType.F32
    return gguf.GGMLQuantizationType[out_type.value]


def _encode(array: np.ndarray, kind: gguf.GGMLQuantizationType) -> np.ndarray:
    """``array`` as the bytes llama.cpp reads for ``kind``."""
    if kind is gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if kind is gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), kind)


def _stored_bytes(shape: tuple[int, ...], kind: gguf.GGMLQuantizationType) -> int:
    return math.prod(shape) * (4 if kind is gguf.GGMLQuantizationType.F32 else 2)


def convert_hf_to_gguf(
    model_dir: Path,
    destination: Path,
    *,
    out_type: TensorType | str = TensorType.F32,
    name: str = "appliance-model",
    pre_tokenizer_hint: str | None = None,
) -> ConversionResult:
    """Write ``destination`` (a complete GGUF) from the Hugging Face directory ``model_dir``."""
    out_type = TensorType(out_type)
    family, shape = read_export_shape(model_dir)
    arch = gguf.MODEL_ARCH[family.gguf_arch.upper()]
    name_map = gguf.get_tensor_name_map(arch, shape.n_layers)
    tokenizer = read_tokenizer(model_dir, shape.vocab_size, pre_tokenizer_hint)

    plan: list[tuple[str, str, tuple[int, ...]]] = []  # (hf name, gguf name, shape)
    for hf_name, dims in safetensors_shapes(model_dir):
        if hf_name.endswith(family.skipped_suffixes) or (shape.tied_embeddings and hf_name == "lm_head.weight"):
            continue
        plan.append((hf_name, gguf_tensor_name(name_map, hf_name), dims))
    extras = family.extra_tensors(shape)

    partial = destination.with_name(destination.name + ".partial")
    writer = gguf.GGUFWriter(partial, family.gguf_arch)
    try:
        _write_hparams(writer, family, shape, name, out_type)
        write_tokenizer(writer, model_dir, tokenizer)
        for gguf_name, array in extras:
            writer.add_tensor_info(gguf_name, array.shape, np.dtype(np.float32), array.nbytes)
        for _hf_name, gguf_name, dims in plan:
            kind = _stored_type(len(dims), out_type)
            writer.add_tensor_info(gguf_name, dims, np.dtype(np.float32), _stored_bytes(dims, kind), raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _gguf_name, array in extras:
            writer.write_tensor_data(array)
        expected = {hf_name: dims for hf_name, _gguf_name, dims in plan}
        for hf_name, array in iter_safetensors(model_dir):
            if hf_name not in expected:
                continue
            if not np.isfinite(array).all():
                raise ModelError(f"tensor '{hf_name}' holds NaN or inf; refusing to convert")
            converted = family.transform(hf_name, array, shape)
            writer.write_tensor_data(_encode(converted, _stored_type(converted.ndim, out_type)))
        writer.close()
        os.replace(partial, destination)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return ConversionResult(destination, family.gguf_arch, len(plan) + len(extras), tokenizer.pre_tokenizer, tokenizer.add_bos)


def read_gguf_pre_tokenizer(path: Path) -> str | None:
    """The pre-tokenizer name a source GGUF carried; its tokenizer was reconstructed by transformers."""
    reader = gguf.GGUFReader(path)
    field = reader.fields.get("tokenizer.ggml.pre")
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode()
