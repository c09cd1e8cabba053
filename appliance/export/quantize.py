"""Quantize a GGUF with llama.cpp's own quantizer (through the Python binding)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import gguf

from deid.errors import ModelError


def quantize_gguf(source: Path, destination: Path, kind: str, threads: int | None = None) -> Path:
    """Write ``destination`` as ``kind`` (e.g. ``Q4_K_M``); llama.cpp falls back per tensor where rows don't fit."""
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", None)
    if ftype is None:
        raise ModelError(f"llama.cpp in this build has no quantization type {kind}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or 0
    with _native_stderr_silenced():
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(destination).encode(), ctypes.byref(params))
    if status != 0 or not destination.is_file():
        destination.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not quantize {source.name} to {kind} (status {status})")
    return destination


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """llama.cpp prints every tensor and each K-quant fallback from C; tensor_types() reports them instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each type a GGUF holds: shows where K-quants fell back on odd row sizes."""
    return dict(sorted(Counter(tensor.tensor_type.name for tensor in gguf.GGUFReader(path).tensors).items()))
