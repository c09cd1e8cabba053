"""Retrieval-grounded prompts: the passages an answer may use, numbered, within a budget.

The service implements the API's ``serve.grounding.Grounding`` and ``PassageSource`` protocols,
so the API never imports the retrieval stack: ``appliance`` builds this and hands it to
``serve.app.create_app``. It opens cheaply (``None`` when no
knowledge base was built) and loads the index on first use, so the API starts at once. A
question whose best passage is not similar enough gets no citations and an instruction to
say that the approved knowledge has nothing on it, rather than a made-up grounding.
"""

from __future__ import annotations

import threading
from pathlib import Path

from appliance.config import ApplianceSettings
from appliance.kb.base import KnowledgeBase
from appliance.kb.config import KnowledgeConfig
from appliance.kb.embedding import Embedder
from appliance.kb.retrieval import Retriever
from appliance.kb.store import StoredChunk
from serve.grounding import GroundedPrompt
from serve.knowledge.protocol import Citation, Passage, passage_href

NO_RELEVANT_KNOWLEDGE = "The hospital's approved knowledge base has no passage relevant to this question."
MIN_PASSAGE_CHARS = 200

GROUNDED_INSTRUCTIONS = (
    "Answer using the numbered passages from the hospital's approved knowledge base below. "
    "Cite the passages you use as [1], [2]. If they do not answer the question, say so."
)
UNGROUNDED_INSTRUCTIONS = (
    f"{NO_RELEVANT_KNOWLEDGE} Begin your answer by saying exactly that, then give only general "
    "guidance and mark it as not from approved sources."
)


class KnowledgeService:
    def __init__(self, knowledge: KnowledgeBase, config: KnowledgeConfig) -> None:
        self._knowledge = knowledge
        self.config = config
        self._retriever: Retriever | None = None
        self._by_id: dict[str, StoredChunk] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: ApplianceSettings) -> KnowledgeService | None:
        """The service for ``settings.kb_dir``; ``None`` when no knowledge base holds any passage."""
        return cls.open_dir(settings.kb_dir, settings.kb)

    @classmethod
    def open_dir(
        cls, kb_dir: Path, config: KnowledgeConfig, *, embedder: Embedder | None = None
    ) -> KnowledgeService | None:
        knowledge = KnowledgeBase.open(kb_dir, config, embedder=embedder)
        if knowledge is None:
            return None
        if knowledge.store.counts()[1] == 0:
            knowledge.close()
            return None
        return cls(knowledge, config)

    def close(self) -> None:
        self._knowledge.close()

    def warm(self) -> None:
        """Load the index and embedding model now (e.g. in the API's warm-up) instead of on first use."""
        self.retriever()

    @property
    def ready(self) -> bool:
        return self._retriever is not None

    def retriever(self) -> Retriever:
        """Loaded once, on first use (index, graph and embedding model together)."""
        with self._lock:
            if self._retriever is None:
                self._retriever = self._knowledge.retriever()
                self._by_id = {chunk.chunk_id: chunk for chunk in self._retriever.chunks}
            return self._retriever

    def retrieve(self, question: str, k: int | None = None) -> list[Citation]:
        """Numbered citations of relevant passages, best first; empty means nothing relevant."""
        hits = self.retriever().relevant(question, k or self.config.top_k)
        budget = self.config.context_chars
        citations: list[Citation] = []
        for hit in hits:
            if budget < MIN_PASSAGE_CHARS:
                break
            text = _shorten(hit.chunk.text, budget)
            budget -= len(text)
            citations.append(
                Citation(
                    number=len(citations) + 1,
                    chunk_id=hit.chunk.chunk_id,
                    title=hit.chunk.title,
                    section=hit.chunk.section,
                    source=_source_label(hit.chunk),
                    url=hit.chunk.url,
                    href=passage_href(hit.chunk.chunk_id),
                    text=text,
                    score=round(hit.score, 6),
                    similarity=round(hit.similarity, 4),
                )
            )
        return citations

    def ground(self, question: str, messages: list[dict[str, str]]) -> GroundedPrompt:
        """``serve.grounding.Grounding``: add the passages to the caller's system prompt."""
        citations = self.retrieve(question)
        block = knowledge_block(citations)
        grounded = [dict(message) for message in messages]
        if grounded and grounded[0].get("role") == "system":
            grounded[0]["content"] = f"{grounded[0]['content']}\n\n{block}"
        else:
            grounded.insert(0, {"role": "system", "content": block})
        return GroundedPrompt(
            messages=grounded,
            citations=[c.model_dump() for c in citations],
            notice=None if citations else NO_RELEVANT_KNOWLEDGE,
        )

    def passage(self, chunk_id: str) -> Passage | None:
        self.retriever()
        chunk = self._by_id.get(chunk_id)
        if chunk is None:
            return None
        return Passage(
            chunk_id=chunk.chunk_id,
            title=chunk.title,
            section=chunk.section,
            source=_source_label(chunk),
            url=chunk.url,
            text=chunk.text,
        )


def knowledge_block(citations: list[Citation]) -> str:
    if not citations:
        return UNGROUNDED_INSTRUCTIONS
    passages = "\n\n".join(
        f"[{c.number}] {c.title}{' - ' + c.section if c.section else ''}\n{c.text}" for c in citations
    )
    return f"{GROUNDED_INSTRUCTIONS}\n\n{passages}"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return f"{cut} ..."


def _source_label(chunk: StoredChunk) -> str:
    return chunk.url or Path(chunk.source).name
