"""Typed settings of ``appliance bundle``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BundleConfig(BaseModel):
    target: str = Field("cpu", pattern="^(cpu|cuda)$")
