"""How much memory serving a GGUF needs: weights + KV cache for every slot + working buffers.

An estimate from the file's metadata, before anything is loaded, so ``appliance doctor`` can
say whether a model, ``serve.parallel`` and ``serve.context_length`` fit the GPU (or RAM) the
machine has. The KV cache holds ``parallel + 1`` streams (one per slot plus the shared chat
preamble) of ``context_length`` cells each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serve.config import KvCacheType, ServeConfig

BYTES_PER_KV_ELEMENT = {KvCacheType.f16: 2.0, KvCacheType.q8_0: 34 / 32, KvCacheType.q4_0: 18 / 32}
# llama.cpp's compute buffers scale with the batch and the widest layer; this fixed share plus
# the float32 logits of a full batch covered what was measured on the embedded model (CPU).
WORKING_SHARE = 0.05
WORKING_FLOOR = 64 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    working_bytes: int
    layers: int
    streams: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.working_bytes


def _field(reader: object, key: str) -> int | None:
    field = reader.fields.get(key)  # type: ignore[attr-defined]
    if field is None or not field.data:
        return None
    return int(field.parts[field.data[0]][0])


def estimate(model: Path, config: ServeConfig) -> MemoryEstimate:
    from gguf import GGUFReader

    reader = GGUFReader(str(model))
    arch_field = reader.fields["general.architecture"]
    arch = bytes(arch_field.parts[arch_field.data[0]]).decode("utf-8")
    layers = _field(reader, f"{arch}.block_count") or 0
    width = _field(reader, f"{arch}.embedding_length") or 0
    heads = _field(reader, f"{arch}.attention.head_count") or 1
    kv_heads = _field(reader, f"{arch}.attention.head_count_kv") or heads
    head_k = _field(reader, f"{arch}.attention.key_length") or width // heads
    head_v = _field(reader, f"{arch}.attention.value_length") or width // heads
    vocab = _field(reader, f"{arch}.vocab_size") or len(reader.fields["tokenizer.ggml.tokens"].data)
    streams = config.parallel + 1
    cells = config.context_length * streams
    per_cell = layers * kv_heads * (head_k + head_v) * BYTES_PER_KV_ELEMENT[config.kv_cache_type]
    weights = os.path.getsize(model)
    if config.adapter is not None:
        weights += os.path.getsize(config.adapter)
    batch = max(config.batch_tokens, config.parallel + 16)
    working = max(WORKING_FLOOR, int(weights * WORKING_SHARE)) + batch * vocab * 4
    return MemoryEstimate(weights, int(cells * per_cell), working, layers, streams)
