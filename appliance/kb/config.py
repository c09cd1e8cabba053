"""Typed settings of the knowledge base (retrieval for grounded consultations)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class KnowledgeConfig(BaseModel):
    chunk_tokens: int = Field(200, ge=16)
    top_k: int = Field(5, ge=1)
