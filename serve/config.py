"""Typed settings of the consultation API."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class ServeConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    model: Path | None = None
    adapter: Path | None = None
    context_length: int = Field(2048, ge=128)
    threads: int | None = None
