"""Entity vocabulary and mention matching for the knowledge graph.

Sources that name their subject (MedQuAD's focus, with a UMLS CUI and semantic type when the
record has them) give entities directly. Other documents contribute their short titles,
capitalised multi-word terms ("Acute Kidney Injury") and acronyms ("COPD"). Every entity is
then matched in every chunk by exact word n-grams, so one vocabulary links all sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.kb.documents import SourceDocument
from appliance.kb.store import EntityRecord
from appliance.kb.text import STOPWORDS, words

MAX_ENTITY_WORDS = 8
_CAPITALISED_RUN = re.compile(r"\b(?:[A-Z][a-z0-9'-]+|[A-Z]{2,}[0-9]*)(?:[ -](?:of |and |the )?(?:[A-Z][a-z0-9'-]+|[A-Z]{2,}[0-9]*|[0-9]+))+")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{2,6}\b")
_GENERIC = frozenset(
    """key points summary introduction overview background references table figure page section chapter
    note notes see also contents appendix""".split()
)


def normalize_entity(name: str) -> str:
    return " ".join(words(name))


def is_usable(norm: str) -> bool:
    tokens = norm.split()
    if not tokens or len(tokens) > MAX_ENTITY_WORDS or len(norm) < 3:
        return False
    content = [t for t in tokens if t not in STOPWORDS and t not in _GENERIC and not t.isdigit()]
    return bool(content)


@dataclass
class Vocabulary:
    """Entities in a fixed order (their ids) plus each document's subject entities."""

    records: list[EntityRecord]
    ids: dict[str, int]

    @classmethod
    def empty(cls) -> Vocabulary:
        return cls([], {})

    def add(self, name: str, kind: str, cui: str | None = None, semantic_type: str | None = None) -> int | None:
        norm = normalize_entity(name)
        if not is_usable(norm):
            return None
        existing = self.ids.get(norm)
        if existing is not None:
            old = self.records[existing]
            if (cui and not old.cui) or (kind == "focus" and old.kind != "focus"):
                self.records[existing] = EntityRecord(
                    norm, old.name if old.kind == "focus" else name, "focus" if kind == "focus" else old.kind,
                    old.cui or cui, old.semantic_type or semantic_type,
                )
            return existing
        self.ids[norm] = len(self.records)
        self.records.append(EntityRecord(norm, name.strip(), kind, cui, semantic_type))
        return self.ids[norm]


def document_subjects(document: SourceDocument, vocabulary: Vocabulary) -> list[int]:
    """Entities a document is about: its stated foci, else its title when that reads like a term."""
    subjects: list[int] = []
    for hint in document.entities:
        entity = vocabulary.add(hint.name, hint.kind, hint.cui, hint.semantic_type)
        if entity is not None:
            subjects.append(entity)
    if not document.entities and len(document.title.split()) <= 6:
        entity = vocabulary.add(document.title, "title")
        if entity is not None:
            subjects.append(entity)
    return subjects


def extract_terms(text: str) -> Iterable[str]:
    """Entity-like surface forms in free text (documents without stated foci)."""
    for match in _CAPITALISED_RUN.finditer(text):
        phrase = match.group(0)
        if len(phrase.split()) <= MAX_ENTITY_WORDS:
            yield re.sub(r"^(?:The|A|An|This|These|Your|In|For|If|When) ", "", phrase)
    yield from _ACRONYM.findall(text)


class PhraseMatcher:
    """Greedy longest-match lookup of entity names in a word sequence."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self._phrases: dict[tuple[str, ...], int] = {}
        self._lengths: dict[str, list[int]] = {}
        for norm, entity in vocabulary.ids.items():
            tokens = tuple(norm.split())
            self._phrases[tokens] = entity
            lengths = self._lengths.setdefault(tokens[0], [])
            if len(tokens) not in lengths:
                lengths.append(len(tokens))
                lengths.sort(reverse=True)

    def find(self, text: str) -> list[int]:
        """Entity ids in order of appearance, without repeats."""
        tokens = words(text)
        found: dict[int, None] = {}
        position = 0
        while position < len(tokens):
            step = 1
            for length in self._lengths.get(tokens[position], ()):
                entity = self._phrases.get(tuple(tokens[position : position + length]))
                if entity is not None:
                    found[entity] = None
                    step = length
                    break
            position += step
        return list(found)
