"""OpenAI's model list shape, plus the admin reload answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "appliance"
    ready: bool = Field(True, description="Extension: false while the model is still loading (see /readyz)")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ReloadResult(BaseModel):
    model: str
    sha256: str
    load_seconds: float
