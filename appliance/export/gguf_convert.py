"""Our Hugging Face -> GGUF converter for llama, mistral and qwen2 checkpoints.

Weights are read tensor by tensor from safetensors, renamed with the ``gguf`` package's
name map, permuted where llama.cpp's rope layout needs it, and written with its writer.
Vectors (norms, biases) stay F32 because llama.cpp expects them so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gguf
import numpy as np

from appliance.errors import ModelError
from appliance.export.architecture import ModelShape, permutation_heads, read_model_shape, rope_permute
from appliance.export.tokenizer_gguf import read_tokenizer, write_tokenizer

OutType = Literal["F32", "F16"]
_SKIPPED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclass(frozen=True)
class ConversionResult:
    path: Path
    architecture: str
    tensors: int
    pre_tokenizer: str
    add_bos: bool


def iter_safetensors(model_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of a checkpoint as float32 numpy, one at a time (bf16 goes through torch)."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ModelError(f"no *.safetensors weights in {model_dir}")
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield name, handle.get_tensor(name).float().numpy()


def gguf_tensor_name(name_map: gguf.TensorNameMap, hf_name: str) -> str:
    mapped = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if mapped is None:
        raise ModelError(f"tensor '{hf_name}' has no GGUF name for this architecture")
    return mapped


def _write_hparams(writer: gguf.GGUFWriter, shape: ModelShape, name: str, out_type: OutType) -> None:
    writer.add_name(name)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.hidden_size)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.intermediate_size)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_kv_head)
    writer.add_layer_norm_rms_eps(shape.rms_norm_eps)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_rope_dimension_count(shape.head_dim)
    if shape.head_dim * shape.n_head != shape.hidden_size:
        writer.add_key_length(shape.head_dim)
        writer.add_value_length(shape.head_dim)
    if shape.rope_linear_factor is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(shape.rope_linear_factor)
    writer.add_vocab_size(shape.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if out_type == "F32" else gguf.LlamaFileType.MOSTLY_F16)


def convert_hf_to_gguf(
    model_dir: Path,
    destination: Path,
    *,
    out_type: OutType = "F32",
    name: str = "appliance-model",
    pre_tokenizer_hint: str | None = None,
) -> ConversionResult:
    """Write ``destination`` (a complete GGUF) from the Hugging Face directory ``model_dir``."""
    shape = read_model_shape(model_dir)
    arch = gguf.MODEL_ARCH[shape.gguf_arch.upper()]
    name_map = gguf.get_tensor_name_map(arch, shape.n_layers)
    tokenizer = read_tokenizer(model_dir, shape.vocab_size, pre_tokenizer_hint)

    writer = gguf.GGUFWriter(destination, shape.gguf_arch)
    _write_hparams(writer, shape, name, out_type)
    write_tokenizer(writer, model_dir, tokenizer)
    count = 0
    for hf_name, array in iter_safetensors(model_dir):
        if hf_name.endswith(_SKIPPED_SUFFIXES) or (shape.tied_embeddings and hf_name == "lm_head.weight"):
            continue
        if not np.isfinite(array).all():
            raise ModelError(f"tensor '{hf_name}' holds NaN or inf; refusing to convert")
        heads = permutation_heads(shape, hf_name)
        if heads is not None:
            array = rope_permute(array, heads)
        keep_f32 = out_type == "F32" or array.ndim == 1
        writer.add_tensor(gguf_tensor_name(name_map, hf_name), array.astype(np.float32 if keep_f32 else np.float16))
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ConversionResult(destination, shape.gguf_arch, count, tokenizer.pre_tokenizer, tokenizer.add_bos)


def read_gguf_pre_tokenizer(path: Path) -> str | None:
    """The pre-tokenizer name a source GGUF carried; its tokenizer was reconstructed by transformers."""
    reader = gguf.GGUFReader(path)
    field = reader.fields.get("tokenizer.ggml.pre")
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode()

