"""Grounded consultations end to end: a live server, a MedQuAD knowledge base, real retrieval and llama.cpp."""

from __future__ import annotations

import json

import httpx

from appliance.kb.grounding import NO_RELEVANT_KNOWLEDGE
from serve.auth.protocol import Role
from serve.grounding import with_notice
from tests.appliance.kb.conftest import medquad_pairs
from tests.serve.conftest import KNOWLEDGE_PAIRS
from tests.serve.live import LiveServer

OFF_TOPIC = "Which Python web framework suits a REST API?"


def _post(server: LiveServer, path: str, body: dict) -> dict:
    response = httpx.post(f"{server.base_url}{path}", json=body, headers=server.auth(Role.clinician), timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def test_readyz_waits_for_the_knowledge_index(knowledge_server: LiveServer) -> None:
    body = httpx.get(f"{knowledge_server.base_url}/readyz", timeout=10).json()
    assert body["status"] == "ready" and body["knowledge"] == "ready"
    assert knowledge_server.app.state.services.grounding.ready, "warm-up loaded the index before the first consult"


def test_consult_cites_numbered_passages_that_resolve_to_their_text(knowledge_server: LiveServer) -> None:
    pair = medquad_pairs()[2]
    body = _post(knowledge_server, "/v1/consult", {"question": pair["question"], "temperature": 0, "seed": 1})
    citations = body["citations"]
    assert body["grounding"] == "cited" and NO_RELEVANT_KNOWLEDGE not in body["answer"]
    assert [c["number"] for c in citations] == list(range(1, len(citations) + 1))
    assert citations[0]["title"] == pair["focus"] and citations[0]["source"] == pair["url"]
    for citation in citations:
        assert citation["href"] == f"/v1/knowledge/passages/{citation['chunk_id']}"
        anonymous = httpx.get(f"{knowledge_server.base_url}{citation['href']}", timeout=10)
        assert anonymous.status_code == 401, "passage text needs a key like every other endpoint"
        passage = httpx.get(
            f"{knowledge_server.base_url}{citation['href']}", headers=knowledge_server.auth(Role.clinician), timeout=10
        ).json()
        assert passage["chunk_id"] == citation["chunk_id"] and passage["title"] == citation["title"]
        assert citation["text"].removesuffix(" ...") in passage["text"]
    sources = {p["url"]: p["answer"] for p in medquad_pairs()[:KNOWLEDGE_PAIRS]}
    top = httpx.get(
        f"{knowledge_server.base_url}{citations[0]['href']}", headers=knowledge_server.auth(Role.clinician), timeout=10
    ).json()
    assert top["text"][:80] in sources[pair["url"]], "the cited passage is the source document's own text"


def test_off_topic_consult_says_nothing_relevant_and_cites_nothing(knowledge_server: LiveServer) -> None:
    body = _post(knowledge_server, "/v1/consult", {"question": OFF_TOPIC, "temperature": 0, "seed": 1})
    assert body["citations"] == [] and body["grounding"] == "none"
    assert body["answer"].startswith(NO_RELEVANT_KNOWLEDGE), "said by the API whatever the model wrote"


def test_grounded_chat_completion_returns_citations_streaming_or_not(knowledge_server: LiveServer) -> None:
    pair = medquad_pairs()[1]
    request = {
        "model": knowledge_server.model_id,
        "messages": [{"role": "user", "content": pair["question"]}],
        "grounded": True,
        "temperature": 0,
        "max_tokens": 8,
    }
    body = _post(knowledge_server, "/v1/chat/completions", request)
    assert body["citations"][0]["number"] == 1 and body["citations"][0]["source"] == pair["url"]
    plain = _post(knowledge_server, "/v1/chat/completions", {**request, "grounded": False})
    assert plain.get("citations") is None, "grounding is asked for, never imposed on OpenAI clients"

    with httpx.stream(
        "POST", f"{knowledge_server.base_url}/v1/chat/completions",
        json={**request, "messages": [{"role": "user", "content": OFF_TOPIC}], "stream": True},
        headers=knowledge_server.auth(Role.clinician), timeout=120,
    ) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    assert text.startswith(NO_RELEVANT_KNOWLEDGE) and all("citations" not in e for e in events)


def test_notice_leads_the_answer_once() -> None:
    assert with_notice("Rest and fluids.", "Nothing found.") == "Nothing found.\n\nRest and fluids."
    assert with_notice("Nothing found. Rest.", "Nothing found.") == "Nothing found. Rest."
    assert with_notice("", "Nothing found.") == "Nothing found."
    assert with_notice("Rest.", None) == "Rest."
