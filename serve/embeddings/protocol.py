"""OpenAI's embeddings schema, and the seam to whatever computes the vectors.

``serve`` never imports the knowledge base: ``create_app`` receives a ``TextEmbedder`` (the
appliance wires in the one its knowledge base retrieves with), so hospital tools can embed with
the same vectors the appliance searches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(max_length=200_000)]
TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=8192)]
MAX_INPUTS = 256


@dataclass(frozen=True)
class Embedded:
    """Unit-length float32 rows in input order, and the tokens that went into them."""

    vectors: np.ndarray
    tokens: int


class TextEmbedder(Protocol):
    @property
    def model_id(self) -> str:
        """The id clients send as ``model``."""
        ...

    @property
    def dimensions(self) -> int: ...

    @property
    def sha256(self) -> str | None:
        """Digest of the weights, for the ledger; None when unknown."""
        ...

    def embed(self, texts: list[str]) -> Embedded:
        """Blocking (a neural network runs here): call it from a worker thread."""
        ...


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., min_length=1, max_length=256)
    input: Text | list[Text] | TokenIds | list[TokenIds]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, max_length=256)


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage
