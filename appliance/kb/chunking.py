"""Splitting documents into passages small enough to cite and to fit several in a prompt."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from appliance.kb.documents import SourceDocument

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    ordinal: int
    part: int
    title: str
    section: str
    url: str | None
    text: str

    @property
    def embedding_text(self) -> str:
        """Title and heading first: the start of this string is what the dense model sees."""
        head = ". ".join(part for part in (self.title, self.section) if part)
        return f"{head}. {self.text}" if head else self.text


def chunk_document(document: SourceDocument, chunk_words: int, overlap_words: int) -> list[Chunk]:
    """Chunks of about ``chunk_words`` words, cut at sentence ends where possible, within one section.

    The chunk id hashes the document key, position and text, so a citation keeps pointing at
    the same passage until that document's content changes.
    """
    chunks: list[Chunk] = []
    for section in document.sections:
        pieces = _split(section.text, chunk_words, min(overlap_words, chunk_words // 2))
        for part, piece in enumerate(pieces):
            ordinal = len(chunks)
            digest = hashlib.sha256(f"{document.key}\x00{ordinal}\x00{piece}".encode()).hexdigest()[:20]
            chunks.append(Chunk(digest, ordinal, part, document.title, section.heading, document.url, piece))
    return chunks


def _split(text: str, chunk_words: int, overlap_words: int) -> list[str]:
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        tokens = sentence.split()
        while len(tokens) > chunk_words:  # a run-on "sentence" (lists, tables) is cut hard
            room = chunk_words - len(current)
            current.extend(tokens[:room])
            tokens = tokens[room:]
            pieces.append(" ".join(current))
            current = current[-overlap_words:] if overlap_words else []
        if current and len(current) + len(tokens) > chunk_words:
            pieces.append(" ".join(current))
            current = current[-overlap_words:] if overlap_words else []
        current.extend(tokens)
    if current and (not pieces or len(current) > overlap_words):
        pieces.append(" ".join(current))
    return pieces
