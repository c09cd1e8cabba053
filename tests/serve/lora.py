"""A small LoRA adapter GGUF for the embedded model, written with the ``gguf`` package."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_lora_adapter(base: Path, out: Path, *, rank: int = 4, layers: int = 6, scale: float = 0.5) -> Path:
    """LoRA on ``attn_q`` of the first ``layers`` blocks, random enough to change greedy output."""
    reader = gguf.GGUFReader(str(base))
    shapes = {tensor.name: [int(x) for x in tensor.shape] for tensor in reader.tensors}
    rng = np.random.default_rng(7)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for block in range(layers):
        name = f"blk.{block}.attn_q.weight"
        n_in, n_out = shapes[name]
        writer.add_tensor(f"{name}.lora_a", (rng.standard_normal((rank, n_in)) * scale).astype(np.float32))
        writer.add_tensor(f"{name}.lora_b", (rng.standard_normal((n_out, rank)) * scale).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
