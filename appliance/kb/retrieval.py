"""Hybrid retrieval: BM25, dense cosine and the entity graph, fused by reciprocal rank.

Reciprocal-rank fusion needs no score calibration between retrievers, so nothing here is
tuned on the questions the benchmark holds out. Relevance is judged separately, by the
cosine between question and passage: fusion ranks, the threshold decides whether to cite.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from appliance.kb.bm25 import BM25Index
from appliance.kb.config import KnowledgeConfig
from appliance.kb.embedding import Embedder
from appliance.kb.graph import KnowledgeGraph
from appliance.kb.store import KnowledgeStore, StoredChunk


class Method(StrEnum):
    lexical = "lexical"
    dense = "dense"
    hybrid = "hybrid"
    graph = "graph"


@dataclass(frozen=True)
class Hit:
    chunk: StoredChunk
    score: float
    similarity: float


class Retriever:
    """Everything needed at query time, loaded once from the store."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder, config: KnowledgeConfig) -> None:
        self.config = config
        self.embedder = embedder
        self.chunks = store.chunks()
        self._vectors = store.embeddings()
        self._bm25 = BM25Index([c.title + " " + c.section + " " + c.text for c in self.chunks])
        self.graph = KnowledgeGraph(store, {c.row: i for i, c in enumerate(self.chunks)})

    def __len__(self) -> int:
        return len(self.chunks)

    def search(self, question: str, k: int, method: Method = Method.graph) -> list[Hit]:
        """The top ``k`` chunks by ``method``, each with its cosine to the question (unfiltered)."""
        if not self.chunks or not question.strip():
            return []
        similarity = self._vectors @ self.embedder.encode([question])[0]
        depth = self.config.candidates
        rankings: list[np.ndarray] = []
        if method in (Method.lexical, Method.hybrid, Method.graph):
            rankings.append(_top(self._bm25.scores(question), depth, positive_only=True))
        if method in (Method.dense, Method.hybrid, Method.graph):
            rankings.append(_top(similarity, depth))
        if len(rankings) == 1:
            order = rankings[0]
            fused = {int(p): 1.0 / (self.config.rrf_k + r + 1) for r, p in enumerate(order)}
        else:
            fused = _rrf(rankings, self.config.rrf_k)
            if method is Method.graph and self.config.graph_expansion:
                graph = self.graph.scores(question, self.config.graph_neighbours, len(self.chunks))
                if graph.any():
                    tie_break = np.zeros(len(self.chunks))
                    for position, value in fused.items():
                        tie_break[position] = value
                    ordered = np.where(graph > 0, graph + 1e-3 * tie_break, 0.0)
                    fused = _rrf([*rankings, _top(ordered, depth, positive_only=True)], self.config.rrf_k)
        best = sorted(fused.items(), key=lambda item: -item[1])[:k]
        return [Hit(self.chunks[p], score, float(similarity[p])) for p, score in best]

    def relevant(self, question: str, k: int, method: Method = Method.graph) -> list[Hit]:
        """Like :meth:`search`, keeping only passages close enough to the question to cite."""
        return [hit for hit in self.search(question, k, method) if hit.similarity >= self.config.min_similarity]


def _top(scores: np.ndarray, depth: int, *, positive_only: bool = False) -> np.ndarray:
    """Positions of the ``depth`` best scores, best first (ties keep chunk order)."""
    pool = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(pool) > depth:
        pool = pool[np.argpartition(-scores[pool], depth)[:depth]]
    return pool[np.argsort(-scores[pool], kind="stable")]


def _rrf(rankings: list[np.ndarray], k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, position in enumerate(ranking):
            fused[int(position)] = fused.get(int(position), 0.0) + 1.0 / (k + rank + 1)
    return fused
