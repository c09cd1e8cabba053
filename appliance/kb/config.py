"""Typed settings of the knowledge base (retrieval for grounded consultations)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class KnowledgeConfig(BaseModel):
    chunk_tokens: int = Field(200, ge=16, description="Words per chunk; chunks never cross a section")
    chunk_overlap: int = Field(30, ge=0, description="Words repeated between neighbouring chunks of a long section")
    top_k: int = Field(5, ge=1, description="Passages cited per answer")
    candidates: int = Field(50, ge=5, description="Hits each retriever contributes before fusion")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion damping constant")
    graph_expansion: bool = Field(True, description="Fuse a third ranking from the entity graph of the question")
    graph_neighbours: int = Field(5, ge=0, description="Co-occurring entities added per question entity")
    min_similarity: float = Field(
        0.40,
        ge=-1.0,
        le=1.0,
        description="Cosine below which a passage is not cited; none left = nothing relevant. Set on 500 MedQuAD "
        "tuning questions disjoint from the benchmark's held-out ones (99.6% keep a citation)",
    )
    embed_max_tokens: int = Field(
        64, ge=16, le=512, description="Tokens of title + chunk start that are embedded (BM25 sees the whole chunk)"
    )
    embed_continuations: bool = Field(
        False,
        description="Embed every chunk; off = later chunks of a section share its opening's vector (~40% less work)",
    )
    embed_batch_size: int = Field(64, ge=1)
    embed_threads: int = Field(
        1, ge=1, description="Torch threads for bulk embedding; 1 suits a server shared with llama.cpp"
    )
    embed_int8: bool = Field(True, description="Dynamic int8 Linear layers: about 2x faster embedding on CPU")
    context_chars: int = Field(3000, ge=200, description="Passage text placed in the prompt, across all citations")
    jsonl_question_headings: bool = Field(
        False,
        description="Use MedQuAD questions as section headings; off so evaluation questions never leak into the index",
    )
