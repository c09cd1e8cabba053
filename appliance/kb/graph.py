"""The entity graph: built from the whole knowledge base, queried to expand a question.

Chunks link to the entities they mention (``is_subject`` when the entity is what their
document is about); entities link to each other when they co-occur in a chunk. A question's
entities, and their strongest neighbours, then vote for the chunks about them, in the manner
of graph-based RAG: a question naming a drug can reach passages about the condition it treats.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from appliance.kb.entities import PhraseMatcher, Vocabulary, document_subjects, extract_terms
from appliance.kb.store import KnowledgeStore

MAX_ENTITIES_PER_CHUNK = 12
HUB_FRACTION = 0.02  # entities in more documents than this are too generic to connect others


def build_graph(store: KnowledgeStore) -> tuple[int, int]:
    """Recompute entities, mentions and edges from every stored document; returns (entities, edges)."""
    vocabulary = Vocabulary.empty()
    subjects: dict[str, list[int]] = {}
    for _, document in store.documents():
        subjects[document.key] = document_subjects(document, vocabulary)
        if not document.entities:
            for section in document.sections:
                for term in extract_terms(section.text):
                    vocabulary.add(term, "term")
    matcher = PhraseMatcher(vocabulary)
    chunk_entities: dict[int, dict[int, int]] = {}
    documents_of: defaultdict[int, set[str]] = defaultdict(set)
    for chunk in store.chunks():
        linked = dict.fromkeys(subjects.get(chunk.doc_key, ()), 1)
        for entity in matcher.find(f"{chunk.section} {chunk.text}"):
            linked.setdefault(entity, 0)
        for entity in linked:
            documents_of[entity].add(chunk.doc_key)
        chunk_entities[chunk.row] = linked
    frequency = {entity: len(keys) for entity, keys in documents_of.items()}
    hub_limit = max(HUB_FRACTION * len(subjects), 5)
    pairs: Counter[tuple[int, int]] = Counter()
    for linked in chunk_entities.values():
        connectable = sorted(
            (e for e in linked if frequency[e] <= hub_limit), key=lambda e: (-linked[e], frequency[e])
        )[:MAX_ENTITIES_PER_CHUNK]
        for i, a in enumerate(connectable):
            for b in connectable[i + 1 :]:
                pairs[(min(a, b), max(a, b))] += 1
    mentions = [(e, row, subject) for row, linked in chunk_entities.items() for e, subject in linked.items()]
    edges = [(a, b, float(count)) for (a, b), count in pairs.items()]
    with store.transaction() as connection:
        store.replace_graph(connection, vocabulary.records, mentions, edges)
    return len(vocabulary.records), len(edges)


class KnowledgeGraph:
    """In-memory view of the stored graph, indexed by chunk position in the retriever."""

    def __init__(self, store: KnowledgeStore, row_position: dict[int, int]) -> None:
        records = store.entities()
        vocabulary = Vocabulary(records, {r.norm: i for i, r in enumerate(records)})
        self.records = records
        self._matcher = PhraseMatcher(vocabulary)
        self._subject_of: dict[int, list[int]] = defaultdict(list)
        self._mentioned_in: dict[int, list[int]] = defaultdict(list)
        for entity, row, is_subject in store.mentions():
            position = row_position.get(row)
            if position is not None:
                (self._subject_of if is_subject else self._mentioned_in)[entity].append(position)
        self._frequency = {
            e: len(self._subject_of.get(e, ())) + len(self._mentioned_in.get(e, ())) for e in range(len(records))
        }
        self._neighbours: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for a, b, weight in store.edges():
            strength = weight / math.sqrt(max(self._frequency[a], 1) * max(self._frequency[b], 1))
            self._neighbours[a].append((b, strength))
            self._neighbours[b].append((a, strength))
        for links in self._neighbours.values():
            links.sort(key=lambda link: -link[1])
        self._chunks = max(len(row_position), 1)

    def question_entities(self, question: str) -> list[int]:
        return self._matcher.find(question)

    def neighbours(self, entity: int, limit: int) -> list[tuple[int, float]]:
        return self._neighbours.get(entity, [])[:limit]

    def scores(self, question: str, neighbours: int, size: int) -> np.ndarray:
        """A score per chunk position: specific question entities count most, subjects over mentions."""
        scores = np.zeros(size, dtype=np.float64)
        weights: dict[int, float] = {}
        for entity in self.question_entities(question):
            weights[entity] = max(weights.get(entity, 0.0), self._specificity(entity))
            for neighbour, strength in self.neighbours(entity, neighbours):
                weights.setdefault(neighbour, 0.0)
                weights[neighbour] = max(weights[neighbour], 0.5 * strength * self._specificity(neighbour))
        for entity, weight in weights.items():
            subject = self._subject_of.get(entity)
            if subject:
                scores[subject] += weight
            mentioned = self._mentioned_in.get(entity)
            if mentioned:
                scores[mentioned] += 0.3 * weight
        return scores

    def _specificity(self, entity: int) -> float:
        return math.log(1.0 + self._chunks / (1.0 + self._frequency.get(entity, 0)))
