"""Typed settings of ``appliance bundle``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BundleConfig(BaseModel):
    target: str = Field("cpu", pattern="^(cpu|cuda)$")
    signing_key_name: str = Field("release", description="keystore name of the Ed25519 key that signs bundles")
    compress_level: int = Field(6, ge=0, le=9, description="zip level of wheels re-packed from the environment")
