"""The knowledge base as the CLI and the API see it: add, list, remove, rebuild, open a retriever.

Documents are written in batches, each batch one transaction, so an interrupted ``kb add``
keeps what it finished and the next run skips those documents by their content hash (resume
for free). The graph is derived from everything stored and recomputed after each change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.kb.chunking import Chunk, chunk_document
from appliance.kb.config import KnowledgeConfig
from appliance.kb.documents import SourceDocument, expand_paths, read_documents
from appliance.kb.embedding import Embedder, embedder_signature
from appliance.kb.graph import build_graph
from appliance.kb.retrieval import Retriever
from appliance.kb.store import KnowledgeStore, SourceSummary
from deid.errors import ConfigError

WRITE_BATCH_DOCUMENTS = 256

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``."""


@dataclass(frozen=True)
class AddReport:
    files: int
    added: int
    updated: int
    unchanged: int
    removed: int
    chunks: int
    entities: int
    edges: int


class KnowledgeBase:
    def __init__(self, store: KnowledgeStore, config: KnowledgeConfig, embedder: Embedder | None = None) -> None:
        self.store = store
        self.config = config
        self._embedder = embedder

    @classmethod
    def open(
        cls, kb_dir: Path, config: KnowledgeConfig, *, create: bool = False, embedder: Embedder | None = None
    ) -> KnowledgeBase | None:
        store = KnowledgeStore.open(kb_dir, create=create)
        return None if store is None else cls(store, config, embedder)

    def close(self) -> None:
        self.store.close()

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use: listing or removing documents needs no model."""
        if self._embedder is None:
            self._embedder = Embedder(
                max_tokens=self.config.embed_max_tokens, int8=self.config.embed_int8, threads=self.config.embed_threads
            )
        return self._embedder

    @property
    def signature(self) -> str:
        return embedder_signature(self.config.embed_max_tokens, self.config.embed_int8)

    def check_signature(self) -> None:
        """Vectors from another embedding set-up would rank nonsense: refuse, point at rebuild."""
        stored = self.store.meta("embedder")
        if stored is not None and stored != self.signature:
            raise ConfigError(
                f"the knowledge base was embedded as {stored} but kb settings ask for {self.signature}; "
                "run 'appliance kb rebuild'"
            )

    def add(self, paths: Sequence[Path], progress: Progress | None = None) -> AddReport:
        self.check_signature()
        files = expand_paths(list(paths))
        known = self.store.document_hashes()
        pending: list[tuple[str, SourceDocument]] = []
        stale: list[str] = []
        added = updated = unchanged = 0
        for path in files:
            source = str(path.resolve())
            documents = read_documents(path, question_headings=self.config.jsonl_question_headings)
            keys = {document.key for document in documents}
            stale.extend(sorted(self.store.document_keys_for_source(source) - keys))
            for document in documents:
                previous = known.get(document.key)
                if previous == document.content_hash:
                    unchanged += 1
                    continue
                added += previous is None
                updated += previous is not None
                known[document.key] = document.content_hash
                pending.append((source, document))
        chunks = self._write(pending, progress)
        removed = 0
        if stale:
            with self.store.transaction() as connection:
                removed = self.store.delete_documents(connection, stale)
                self.store.bump_generation(connection)
        entities, edges = self._refresh_graph(progress)
        return AddReport(len(files), added, updated, unchanged, removed, chunks, entities, edges)

    def remove(self, targets: Sequence[str]) -> int:
        """Remove documents by source file path or document key; returns how many went."""
        with self.store.transaction() as connection:
            removed = sum(self.store.remove_matching(connection, target) for target in targets)
            if removed:
                self.store.bump_generation(connection)
        if removed:
            self._refresh_graph(None)
        return removed

    def rebuild(self, progress: Progress | None = None) -> AddReport:
        """Re-chunk and re-embed every stored document (after a change of chunking or model)."""
        documents = list(self.store.documents())
        chunks = self._write(documents, progress)
        entities, edges = self._refresh_graph(progress, force=True)
        return AddReport(0, 0, len(documents), 0, 0, chunks, entities, edges)

    def sources(self) -> list[SourceSummary]:
        return self.store.sources()

    def retriever(self) -> Retriever:
        self.check_signature()
        if not self.store.graph_is_current:
            build_graph(self.store)
        return Retriever(self.store, self.embedder, self.config)

    def _write(self, pending: list[tuple[str, SourceDocument]], progress: Progress | None) -> int:
        total_chunks = 0
        done = 0
        for start in range(0, len(pending), WRITE_BATCH_DOCUMENTS):
            batch = pending[start : start + WRITE_BATCH_DOCUMENTS]
            chunked: list[list[Chunk]] = [
                chunk_document(document, self.config.chunk_tokens, self.config.chunk_overlap) for _, document in batch
            ]
            flat = [chunk for chunks in chunked for chunk in chunks]
            vectors = self._vectors(flat)
            with self.store.transaction() as connection:
                self.store.set_meta(connection, "embedder", self.signature)
                offset = 0
                for (source, document), chunks in zip(batch, chunked, strict=True):
                    self.store.put_document(connection, source, document, chunks, vectors[offset : offset + len(chunks)])
                    offset += len(chunks)
                self.store.bump_generation(connection)
            total_chunks += len(flat)
            done += len(batch)
            if progress is not None:
                progress("embedding", done, len(pending))
        return total_chunks

    def _vectors(self, chunks: list[Chunk]) -> np.ndarray:
        """One vector per chunk; continuation chunks may reuse their section opening's vector."""
        embed_all = self.config.embed_continuations
        embedded = [c.embedding_text for c in chunks if c.part == 0 or embed_all]
        vectors = self.embedder.encode(embedded, batch_size=self.config.embed_batch_size)
        rows: list[int] = []
        current = -1
        for chunk in chunks:
            if chunk.part == 0 or embed_all:
                current += 1
            rows.append(current)
        return vectors[np.asarray(rows, dtype=np.int64)]

    def _refresh_graph(self, progress: Progress | None, *, force: bool = False) -> tuple[int, int]:
        if force or not self.store.graph_is_current:
            if progress is not None:
                progress("graph", 0, 1)
            build_graph(self.store)
        return len(self.store.entities()), len(self.store.edges())
