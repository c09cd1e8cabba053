"""The base model for training: a configured Hugging Face folder or GGUF file, else the embedded model."""

from __future__ import annotations

from pathlib import Path

from deid.errors import ModelError
from serve.engine.gguf_file import check_gguf_file, embedded_model_path


def resolve_base_model(configured: Path | None) -> Path:
    """The base model for training: a Hugging Face directory or a GGUF file."""
    if configured is None:
        return embedded_model_path()
    if configured.is_dir():
        if not (configured / "config.json").is_file():
            raise ModelError(f"not a Hugging Face model directory (no config.json): {configured}")
        return configured
    return check_gguf_file(configured)
