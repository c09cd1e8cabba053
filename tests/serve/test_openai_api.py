"""The API as an OpenAI client sees it: the official SDK, unchanged but for base URL and key."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import openai
import pytest

from appliance.config import ApplianceSettings
from serve.auth.protocol import Role
from serve.config import ServeConfig
from serve.consult.protocol import DISCLAIMER
from serve.engine.gguf_file import embedded_model_path
from tests.serve.live import LiveServer, free_port, live_server
from tests.serve.lora import write_lora_adapter

QUESTION = [{"role": "user", "content": "Name one symptom of anemia."}]


def client(server: LiveServer, role: Role = Role.clinician, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key or server.keys[role], max_retries=0)


def test_models_lists_the_served_gguf(main_server: LiveServer) -> None:
    models = client(main_server).models.list().data
    assert [m.id for m in models] == ["SmolLM2-135M-Instruct.Q4_1"]


def test_completion_and_stream_agree_and_count_tokens(main_server: LiveServer) -> None:
    sdk = client(main_server)
    model = main_server.model_id
    full = sdk.chat.completions.create(model=model, messages=QUESTION, max_tokens=12, temperature=0)
    assert full.object == "chat.completion" and full.id.startswith("chatcmpl-")
    assert full.choices[0].message.role == "assistant"
    text = full.choices[0].message.content
    assert text and full.usage is not None
    assert full.usage.completion_tokens <= 12
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens
    assert full.choices[0].finish_reason in ("stop", "length")
    if full.choices[0].finish_reason == "length":
        assert full.usage.completion_tokens == 12

    chunks = list(sdk.chat.completions.create(
        model=model, messages=QUESTION, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text, "greedy decoding must give the same text streamed or not"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "tokens arrive incrementally"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    # The same key sent the same prompt just before: all of it but the last token came from the prompt cache.
    details = chunks[-1].usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == full.usage.prompt_tokens - 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == full.choices[0].finish_reason


def test_seed_makes_sampling_reproducible_and_stop_cuts(main_server: LiveServer) -> None:
    sdk = client(main_server)
    model = main_server.model_id
    runs = [
        sdk.chat.completions.create(model=model, messages=QUESTION, max_tokens=10, temperature=0.9, top_p=0.9, seed=42)
        for _ in range(2)
    ]
    assert runs[0].choices[0].message.content == runs[1].choices[0].message.content
    greedy = sdk.chat.completions.create(model=model, messages=QUESTION, max_tokens=12, temperature=0)
    text = greedy.choices[0].message.content
    words = text.split()
    assert len(words) >= 3
    stop = " " + words[2]
    cut = sdk.chat.completions.create(model=model, messages=QUESTION, max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]


def test_unknown_model_is_404(main_server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client(main_server).chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=4)
    assert raised.value.body["code"] == "model_not_found"


def test_consult_answers_with_disclaimer(main_server: LiveServer) -> None:
    response = httpx.post(
        f"{main_server.base_url}/v1/consult",
        json={"question": "What is the first step in managing anaphylaxis?", "context": "adult, stable", "max_tokens": 24},
        headers=main_server.auth(Role.clinician),
        timeout=120,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["answer"] and body["disclaimer"] == DISCLAIMER
    assert body["model"] == main_server.model_id and body["id"].startswith("consult-")
    assert 0 < body["usage"]["completion_tokens"] <= 24


def test_roles_and_keys(main_server: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(main_server, key="mla_000000000000_not-a-key").models.list()
    no_key = httpx.get(f"{main_server.base_url}/v1/models", timeout=10)
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.PermissionDeniedError):
        client(main_server, Role.auditor).chat.completions.create(
            model=main_server.model_id, messages=QUESTION, max_tokens=2
        )
    base = main_server.base_url
    forbidden = httpx.get(f"{base}/v1/audit/status", headers=main_server.auth(Role.clinician), timeout=10)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "insufficient_role"
    status = httpx.get(f"{base}/v1/audit/status", headers=main_server.auth(Role.auditor), timeout=10).json()
    assert status["egress_guard"] == "strict" and len(status["model_sha256"]) == 64
    assert httpx.get(f"{base}/v1/admin/keys", headers=main_server.auth(Role.clinician), timeout=10).status_code == 403

    admin = main_server.auth(Role.admin)
    created = httpx.post(f"{base}/v1/admin/keys", json={"role": "clinician", "label": "ward-7"}, headers=admin, timeout=10)
    assert created.status_code == 201
    new_key, key_id = created.json()["key"], created.json()["info"]["key_id"]
    assert client(main_server, key=new_key).models.list().data
    listed = httpx.get(f"{base}/v1/admin/keys", headers=admin, timeout=10).json()["data"]
    assert key_id in {k["key_id"] for k in listed} and all("digest" not in k and "key" not in k for k in listed)
    assert httpx.delete(f"{base}/v1/admin/keys/{key_id}", headers=admin, timeout=10).json()["revoked_at"]
    with pytest.raises(openai.AuthenticationError):
        client(main_server, key=new_key).models.list()


def test_health_ready_metrics(main_server: LiveServer) -> None:
    base = main_server.base_url
    assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz", timeout=10).json()["status"] == "ready"
    # Its own request, so the route below is there whichever tests ran before on this server.
    client(main_server).chat.completions.create(model=main_server.model_id, messages=QUESTION, max_tokens=2)
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    for name in ("appliance_api_requests_total", "appliance_api_request_seconds_bucket",
                 "appliance_api_tokens_total", "appliance_api_queue_depth",
                 "appliance_api_generation_tokens_per_second_bucket"):
        assert name in metrics
    assert 'route="/v1/chat/completions"' in metrics


def test_admin_reloads_the_model_and_serving_continues(fuzz_server: LiveServer) -> None:
    base = fuzz_server.base_url
    denied = httpx.post(f"{base}/v1/admin/reload", headers=fuzz_server.auth(Role.clinician), timeout=60)
    assert denied.status_code == 403
    before = httpx.get(f"{base}/v1/audit/status", headers=fuzz_server.auth(Role.auditor), timeout=10).json()
    reloaded = httpx.post(f"{base}/v1/admin/reload", headers=fuzz_server.auth(Role.admin), timeout=120)
    assert reloaded.status_code == 200
    assert reloaded.json()["sha256"] == before["model_sha256"] and reloaded.json()["model"] == fuzz_server.model_id
    answer = client(fuzz_server).chat.completions.create(
        model=fuzz_server.model_id, messages=QUESTION, max_tokens=2, temperature=0
    )
    assert answer.usage is not None and answer.usage.completion_tokens >= 1


def test_serves_a_lora_adapter_on_top_of_the_gguf(tmp_path: Path, fuzz_server: LiveServer) -> None:
    adapter = write_lora_adapter(embedded_model_path(), tmp_path / "ward-lora.gguf")
    settings = ApplianceSettings(home=tmp_path / "home", serve=ServeConfig(
        port=free_port(), adapter=adapter, detect_phi=False, threads=1, context_length=256, parallel=1))
    ask = {"messages": QUESTION, "max_tokens": 4, "temperature": 0}
    with live_server(settings) as tuned:
        assert tuned.model_id == "SmolLM2-135M-Instruct.Q4_1+ward-lora"
        with_adapter = client(tuned).chat.completions.create(model=tuned.model_id, **ask)
        ledger = next(settings.ledger_dir.glob("api-*.jsonl")).read_text()
    base = client(fuzz_server).chat.completions.create(model=fuzz_server.model_id, **ask)
    assert with_adapter.choices[0].message.content != base.choices[0].message.content
    assert '"adapter_sha256"' in ledger


def test_concurrent_requests_share_batches_without_mixing_sequences(main_server: LiveServer) -> None:
    """Greedy output of each request is the same whether it ran alone or batched with others."""
    sdk = client(main_server)
    model = main_server.model_id
    questions = ["Name one symptom of anemia.", "What organ produces insulin?", "Define tachycardia briefly."]

    def ask(question: str) -> str:
        reply = sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], max_tokens=10, temperature=0
        )
        return reply.choices[0].message.content or ""

    alone = [ask(q) for q in questions]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(ask, questions * 2))
    assert together == alone * 2
    assert len(set(alone)) == 3
