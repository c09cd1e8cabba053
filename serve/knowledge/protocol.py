"""What a citation and a served passage look like on the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

PASSAGE_PATH = "/v1/knowledge/passages/{chunk_id}"


def passage_href(chunk_id: str) -> str:
    return PASSAGE_PATH.format(chunk_id=chunk_id)


class Citation(BaseModel):
    """One numbered passage an answer may cite as ``[number]``; ``href`` serves its full text."""

    number: int = Field(..., ge=1)
    chunk_id: str
    title: str
    section: str = ""
    source: str = Field(..., description="Where the passage comes from: its URL, else its file name")
    url: str | None = None
    href: str
    text: str = Field(..., description="The passage as placed in the prompt (may be shortened to fit)")
    score: float = Field(..., description="Fused rank score (reciprocal-rank fusion)")
    similarity: float = Field(..., description="Cosine between question and passage; gates citing at all")


class Passage(BaseModel):
    chunk_id: str
    title: str
    section: str = ""
    source: str
    url: str | None = None
    text: str
