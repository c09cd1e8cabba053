"""Grounded prompts cite real passages, served by the API; nothing relevant is said, not invented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appliance.config import load_settings
from appliance.kb.config import KnowledgeConfig
from appliance.kb.embedding import Embedder
from appliance.kb.grounding import NO_RELEVANT_KNOWLEDGE, KnowledgeService, knowledge_block
from tests.appliance.kb.conftest import medquad_pairs


@pytest.fixture(scope="module")
def service(built_kb: tuple[Path, dict[str, Path]], embedder: Embedder) -> KnowledgeService:
    kb_dir, _ = built_kb
    opened = KnowledgeService.open_dir(kb_dir, KnowledgeConfig(), embedder=embedder)
    assert opened is not None
    return opened


def test_no_knowledge_base_means_no_service(tmp_path: Path) -> None:
    assert KnowledgeService.open(load_settings(None, home=tmp_path)) is None


def test_citations_are_numbered_real_passages(service: KnowledgeService) -> None:
    pair = medquad_pairs()[1]
    citations = service.retrieve(pair["question"])
    assert [c.number for c in citations] == list(range(1, len(citations) + 1))
    assert citations[0].url == pair["url"] and citations[0].title == pair["focus"]
    for citation in citations:
        passage = service.passage(citation.chunk_id)
        assert passage is not None and citation.text.rstrip(" .") in passage.text + " ..."
        assert citation.href == f"/v1/knowledge/passages/{citation.chunk_id}"
        assert citation.similarity >= service.config.min_similarity


def test_grounded_prompt_within_budget_and_cites(service: KnowledgeService) -> None:
    question = "What should be done in the first hour of sepsis?"
    citations = service.retrieve(question)
    assert citations[0].title == "Sepsis Bundle Protocol"
    system = knowledge_block(citations)
    assert "[1] Sepsis Bundle Protocol" in system and "Cite the passages" in system
    assert sum(len(c.text) for c in citations) <= service.config.context_chars


def test_ground_extends_the_callers_system_prompt(service: KnowledgeService) -> None:
    messages = [{"role": "system", "content": "You are careful."}, {"role": "user", "content": "INR target?"}]
    grounded = service.ground("What INR range is targeted on warfarin?", messages)
    assert grounded.messages[0]["content"].startswith("You are careful.\n\n")
    assert grounded.messages[1] == messages[1] and messages[0]["content"] == "You are careful."
    assert grounded.citations[0]["title"] == "warfarin" and grounded.citations[0]["number"] == 1


def test_nothing_relevant_is_said_not_invented(service: KnowledgeService) -> None:
    grounded = service.ground("Which Python web framework suits a REST API?", [{"role": "user", "content": "q"}])
    assert grounded.citations == []
    assert NO_RELEVANT_KNOWLEDGE in grounded.messages[0]["content"]
    assert "[1]" not in grounded.messages[0]["content"]


def test_api_serves_cited_passages(tmp_path: Path, built_kb: tuple[Path, dict[str, Path]]) -> None:
    """Through the real app: the router is mounted when a knowledge base exists, keys are required."""
    from appliance.serving import serve_context
    from serve.app import create_app
    from serve.auth.keys import ApiKeyStore
    from serve.auth.protocol import Role

    kb_dir, _ = built_kb
    settings = load_settings(None, home=tmp_path / "home")
    shutil.copytree(kb_dir, settings.kb_dir)
    secret, _ = ApiKeyStore(settings.api_keys_file).create(Role.clinician)
    app = create_app(serve_context(settings))
    service = app.state.services.consult.grounding
    assert isinstance(service, KnowledgeService)
    citation = service.retrieve("When must metformin be withheld in kidney disease?")[0]
    client = TestClient(app)
    assert client.get(citation.href).status_code == 401
    response = client.get(citation.href, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    body = response.json()
    assert body["chunk_id"] == citation.chunk_id and "eGFR falls below 30" in body["text"]
    assert body["source"] == "https://intranet.example/formulary/metformin"
    missing = client.get("/v1/knowledge/passages/0000", headers={"Authorization": f"Bearer {secret}"})
    assert missing.status_code == 404
    service.close()


def test_a_knowledge_base_that_cannot_load_keeps_readyz_failed(
    tmp_path: Path, built_kb: tuple[Path, dict[str, Path]]
) -> None:
    """Warm-up loads the index beside the model; a replica whose index cannot load never reports ready."""
    import sqlite3
    import time

    from appliance.serving import serve_context
    from serve.app import create_app
    from serve.config import ServeConfig

    kb_dir, _ = built_kb
    settings = load_settings(None, home=tmp_path / "home", serve=ServeConfig(detect_phi=False, threads=1))
    shutil.copytree(kb_dir, settings.kb_dir)
    with sqlite3.connect(settings.kb_dir / "knowledge.sqlite") as db:
        db.execute("UPDATE meta SET value = 'another-embedder' WHERE key = 'embedder'")
    db.close()
    with TestClient(create_app(serve_context(settings))) as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/readyz")).json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = ready.json()
        assert ready.status_code == 503 and body["status"] == "failed" and body["knowledge"] == "failed"
        assert "appliance kb rebuild" in body["reason"]
