"""Quantize a GGUF with llama.cpp's own quantizer (through the Python binding)."""

from __future__ import annotations

import ctypes
import logging
from collections import Counter
from pathlib import Path

import gguf

from appliance.errors import ModelError


def quantize_gguf(source: Path, destination: Path, kind: str, threads: int | None = None) -> Path:
    """Write ``destination`` as ``kind`` (e.g. ``Q4_K_M``); llama.cpp falls back per tensor where rows don't fit."""
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", None)
    if ftype is None:
        raise ModelError(f"llama.cpp in this build has no quantization type {kind}")
    # llama.cpp logs every tensor (and each K-quant fallback) to stderr; tensor_types() reports them instead.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or 0
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(destination).encode(), ctypes.byref(params))
    if status != 0 or not destination.is_file():
        destination.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not quantize {source.name} to {kind} (status {status})")
    return destination


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each type a GGUF holds: shows where K-quants fell back on odd row sizes."""
    return dict(sorted(Counter(tensor.tensor_type.name for tensor in gguf.GGUFReader(path).tensors).items()))
