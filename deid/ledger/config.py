"""Typed settings of the audit ledger."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LedgerConfig(BaseModel):
    checkpoint_every: int = Field(1000, ge=1, description="entries between signed checkpoints")
