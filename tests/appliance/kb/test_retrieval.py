"""Lexical, dense, hybrid and graph retrieval find the right passages; off-topic finds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.kb.base import KnowledgeBase
from appliance.kb.config import KnowledgeConfig
from appliance.kb.embedding import Embedder
from appliance.kb.retrieval import Method, Retriever
from tests.appliance.kb.conftest import medquad_pairs


@pytest.fixture(scope="module")
def retriever(built_kb: tuple[Path, dict[str, Path]], embedder: Embedder) -> Retriever:
    kb_dir, _ = built_kb
    knowledge = KnowledgeBase.open(kb_dir, KnowledgeConfig(), embedder=embedder)
    assert knowledge is not None
    return knowledge.retriever()


@pytest.mark.parametrize("method", list(Method))
def test_each_method_finds_the_answer_document(retriever: Retriever, method: Method) -> None:
    hits_at_5 = 0
    pairs = medquad_pairs()
    for pair in pairs:
        hits = retriever.search(pair["question"], 5, method)
        hits_at_5 += any(hit.chunk.url == pair["url"] for hit in hits)
    assert hits_at_5 >= len(pairs) - 2


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("When should blood cultures be drawn in suspected sepsis?", "Sepsis Bundle Protocol"),
        ("What INR range is targeted on warfarin?", "warfarin"),
        ("Is alcohol rub enough after a patient with C. difficile diarrhoea?", "Hand Hygiene Policy"),
        ("Can a patient with a penicillin allergy label take amoxicillin?", "penicillin"),
        ("When must metformin be withheld in kidney disease?", "Formulary: Metformin"),
    ],
)
def test_hospital_documents_are_found(retriever: Retriever, question: str, title: str) -> None:
    hits = retriever.relevant(question, 3)
    assert hits and hits[0].chunk.title == title


def test_off_topic_question_has_nothing_relevant(retriever: Retriever) -> None:
    assert retriever.search("How do I configure a Kubernetes ingress controller?", 5)
    assert retriever.relevant("How do I configure a Kubernetes ingress controller?", 5) == []


def test_graph_links_entities_and_expands_questions(retriever: Retriever) -> None:
    graph = retriever.graph
    names = {record.norm: i for i, record in enumerate(graph.records)}
    pair = medquad_pairs()[0]
    focus = names[" ".join(pair["focus"].lower().replace("-", " ").split())]
    assert focus in graph.question_entities(pair["question"])
    scores = graph.scores(pair["question"], neighbours=5, size=len(retriever))
    best = retriever.chunks[int(scores.argmax())]
    assert best.url == pair["url"]
    assert any(graph.neighbours(entity, 5) for entity in range(len(graph.records)))
    assert {"focus", "title", "term"} <= {record.kind for record in graph.records}
