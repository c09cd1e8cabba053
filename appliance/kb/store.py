"""The knowledge base on disk: one SQLite file holding documents, chunks, vectors and the graph.

One embedded file keeps the appliance serverless, makes every change a transaction, and
is trivially backed up or bundled. Vectors are float16 blobs (half the size, no measurable
loss for cosine ranking) loaded into one numpy matrix when a retriever opens.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.kb.chunking import Chunk
from appliance.kb.documents import SourceDocument
from deid.errors import WorkdirError

DB_NAME = "knowledge.sqlite"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    fmt TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id INTEGER NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    title TEXT NOT NULL,
    section TEXT NOT NULL,
    url TEXT,
    text TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS entities (
    entity_id INTEGER PRIMARY KEY,
    norm TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    cui TEXT,
    semantic_type TEXT
);
CREATE TABLE IF NOT EXISTS mentions (
    entity_id INTEGER NOT NULL,
    chunk_row INTEGER NOT NULL,
    is_subject INTEGER NOT NULL,
    PRIMARY KEY (entity_id, chunk_row)
);
CREATE TABLE IF NOT EXISTS edges (
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (a, b)
);
"""


@dataclass(frozen=True)
class StoredChunk:
    row: int
    chunk_id: str
    doc_key: str
    source: str
    title: str
    section: str
    url: str | None
    text: str


@dataclass(frozen=True)
class SourceSummary:
    source: str
    documents: int
    chunks: int
    added_at: float


@dataclass(frozen=True)
class EntityRecord:
    norm: str
    name: str
    kind: str
    cui: str | None
    semantic_type: str | None


class KnowledgeStore:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, kb_dir: Path, *, create: bool) -> KnowledgeStore | None:
        """The store under ``kb_dir``; ``None`` when it does not exist and ``create`` is false."""
        path = kb_dir / DB_NAME
        if not path.exists() and not create:
            return None
        try:
            kb_dir.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(_SCHEMA)
            connection.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?), ('generation', '0'), ('graph_generation', '0')",
                (SCHEMA_VERSION,),
            )
            connection.commit()
        except sqlite3.Error as error:
            raise WorkdirError(f"cannot open the knowledge base at {path}: {error}") from None
        return cls(connection, path)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as error:
            raise WorkdirError(f"knowledge base write failed: {error}") from None

    # --- metadata -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, connection: sqlite3.Connection, key: str, value: str) -> None:
        connection.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.meta("generation") or 0)

    def bump_generation(self, connection: sqlite3.Connection) -> None:
        connection.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # --- documents ----------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, sha256 FROM documents"))

    def document_keys_for_source(self, source: str) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM documents WHERE source = ?", (source,))}

    def put_document(
        self,
        connection: sqlite3.Connection,
        source: str,
        document: SourceDocument,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
    ) -> None:
        """Replace ``document`` (and its chunks) in one go; the caller owns the transaction."""
        connection.execute("DELETE FROM documents WHERE key = ?", (document.key,))
        cursor = connection.execute(
            "INSERT INTO documents(key, source, title, url, fmt, sha256, body, added_at) VALUES (?,?,?,?,?,?,?,?)",
            (
                document.key,
                source,
                document.title,
                document.url,
                document.fmt,
                document.content_hash,
                document.to_json(),
                time.time(),
            ),
        )
        doc_id = cursor.lastrowid
        connection.executemany(
            "INSERT INTO chunks(chunk_id, doc_id, ordinal, title, section, url, text, embedding) VALUES (?,?,?,?,?,?,?,?)",
            [
                (c.chunk_id, doc_id, c.ordinal, c.title, c.section, c.url, c.text, v.astype(np.float16).tobytes())
                for c, v in zip(chunks, vectors, strict=True)
            ],
        )

    def delete_documents(self, connection: sqlite3.Connection, keys: Iterable[str]) -> int:
        removed = 0
        for key in keys:
            removed += connection.execute("DELETE FROM documents WHERE key = ?", (key,)).rowcount
        return removed

    def remove_matching(self, connection: sqlite3.Connection, target: str) -> int:
        """Documents whose source file or key equals ``target`` (a path is resolved first)."""
        candidates = {target, str(Path(target).expanduser().resolve())}
        removed = 0
        for value in candidates:
            removed += connection.execute(
                "DELETE FROM documents WHERE source = ? OR key = ?", (value, value)
            ).rowcount
        return removed

    def documents(self) -> Iterator[tuple[str, SourceDocument]]:
        for source, body in self._db.execute("SELECT source, body FROM documents ORDER BY doc_id"):
            yield source, SourceDocument.from_json(body)

    def sources(self) -> list[SourceSummary]:
        rows = self._db.execute(
            """SELECT d.source, COUNT(DISTINCT d.doc_id), COUNT(c.row), MAX(d.added_at)
               FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id
               GROUP BY d.source ORDER BY d.source"""
        )
        return [SourceSummary(*row) for row in rows]

    def counts(self) -> tuple[int, int]:
        docs = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return docs, chunks

    # --- chunks -------------------------------------------------------------------------------
    def chunks(self) -> list[StoredChunk]:
        rows = self._db.execute(
            """SELECT c.row, c.chunk_id, d.key, d.source, c.title, c.section, c.url, c.text
               FROM chunks c JOIN documents d ON d.doc_id = c.doc_id ORDER BY c.row"""
        )
        return [StoredChunk(*row) for row in rows]

    def chunk(self, chunk_id: str) -> StoredChunk | None:
        row = self._db.execute(
            """SELECT c.row, c.chunk_id, d.key, d.source, c.title, c.section, c.url, c.text
               FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.chunk_id = ?""",
            (chunk_id,),
        ).fetchone()
        return StoredChunk(*row) if row else None

    def embeddings(self) -> np.ndarray:
        blobs = [row[0] for row in self._db.execute("SELECT embedding FROM chunks ORDER BY row")]
        if not blobs:
            return np.zeros((0, 0), dtype=np.float32)
        return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1).astype(np.float32)

    # --- graph --------------------------------------------------------------------------------
    def replace_graph(
        self,
        connection: sqlite3.Connection,
        entities: Sequence[EntityRecord],
        mentions: Iterable[tuple[int, int, int]],
        edges: Iterable[tuple[int, int, float]],
    ) -> None:
        """Entities are numbered by position in ``entities``; mentions and edges use those numbers."""
        connection.execute("DELETE FROM entities")
        connection.execute("DELETE FROM mentions")
        connection.execute("DELETE FROM edges")
        connection.executemany(
            "INSERT INTO entities(entity_id, norm, name, kind, cui, semantic_type) VALUES (?,?,?,?,?,?)",
            [(i, e.norm, e.name, e.kind, e.cui, e.semantic_type) for i, e in enumerate(entities)],
        )
        connection.executemany("INSERT INTO mentions(entity_id, chunk_row, is_subject) VALUES (?,?,?)", mentions)
        connection.executemany("INSERT INTO edges(a, b, weight) VALUES (?,?,?)", edges)
        connection.execute(
            "INSERT OR REPLACE INTO meta(key, value) SELECT 'graph_generation', value FROM meta WHERE key = 'generation'"
        )

    @property
    def graph_is_current(self) -> bool:
        return self.meta("graph_generation") == self.meta("generation")

    def entities(self) -> list[EntityRecord]:
        rows = self._db.execute("SELECT norm, name, kind, cui, semantic_type FROM entities ORDER BY entity_id")
        return [EntityRecord(*row) for row in rows]

    def mentions(self) -> list[tuple[int, int, int]]:
        return list(self._db.execute("SELECT entity_id, chunk_row, is_subject FROM mentions"))

    def edges(self) -> list[tuple[int, int, float]]:
        return list(self._db.execute("SELECT a, b, weight FROM edges"))
