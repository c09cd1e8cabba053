"""Typed settings of ``appliance eval``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EvalConfig(BaseModel):
    pubmedqa_limit: int | None = Field(None, ge=1, description="questions used; None = all 500")
    few_shot: int = Field(0, ge=0)
