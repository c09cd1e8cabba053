"""Every limit answers with a 4xx the client can act on, and the server keeps serving."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import httpx

from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role
from tests.serve.live import LiveServer

ASK = {"messages": [{"role": "user", "content": "Describe the heart."}]}


def _body(server: LiveServer, **extra: object) -> dict:
    return {"model": server.model_id, **ASK, **extra}


def _metric(server: LiveServer, name: str) -> float:
    for line in httpx.get(f"{server.base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


def _ledger_payloads(server: LiveServer) -> list[dict]:
    ledger = next(server.settings.ledger_dir.glob("api-*.jsonl"))
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    return [e["payload"] for e in entries if e["action"] == "api.request"]


def test_full_queue_gives_429_with_retry_after_and_disconnect_frees_the_slot(tight_server: LiveServer) -> None:
    url = f"{tight_server.base_url}/v1/chat/completions"
    headers = tight_server.auth(Role.clinician)
    body = _body(tight_server, max_tokens=200, stream=True, temperature=0.9, seed=1)
    with contextlib.ExitStack() as streams:
        running = streams.enter_context(httpx.stream("POST", url, json=body, headers=headers, timeout=60))
        lines = running.iter_lines()
        tokens = (line for line in lines if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line)
        assert next(tokens) and next(tokens), "the first request streams tokens"
        waiting = streams.enter_context(httpx.stream("POST", url, json=body, headers=headers, timeout=60))
        assert waiting.status_code == 200
        refused = httpx.post(url, json=body, headers=headers, timeout=30)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3"
        assert refused.json()["error"]["code"] == "queue_full"
        running.close()
        waiting.close()
    deadline = time.monotonic() + 10
    while _metric(tight_server, "appliance_api_active_sequences") > 0 or _metric(
        tight_server, "appliance_api_queue_depth"
    ) > 0:
        assert time.monotonic() < deadline, "a client that hung up must stop its generation"
        time.sleep(0.1)
    payloads = _ledger_payloads(tight_server)[-3:]
    assert sorted(p["status"] for p in payloads) == [429, 499, 499]
    cancelled = sorted((p for p in payloads if p["status"] == 499), key=lambda p: p["completion_tokens"])
    assert [p["reason"] for p in cancelled] == ["cancelled", "cancelled"]
    assert cancelled[0]["completion_tokens"] == 0, "the queued request never generated"
    assert 0 < cancelled[1]["completion_tokens"] < 200, "the running one stopped early"
    after = httpx.post(url, json=_body(tight_server, max_tokens=3), headers=headers, timeout=60)
    assert after.status_code == 200


def test_rate_limit_per_key(tight_server: LiveServer) -> None:
    key, _ = ApiKeyStore(tight_server.settings.api_keys_file).create(Role.clinician, "rate")
    url = f"{tight_server.base_url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [httpx.post(url, json={}, headers=headers, timeout=10).status_code for _ in range(20)]
    assert statuses == [400] * 20
    limited = httpx.post(url, json={}, headers=headers, timeout=10)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    other = httpx.post(url, json={}, headers=tight_server.auth(Role.clinician), timeout=10)
    assert other.status_code == 400, "the budget is per key"


def test_size_and_token_limits(tight_server: LiveServer) -> None:
    url = f"{tight_server.base_url}/v1/chat/completions"
    headers = tight_server.auth(Role.clinician)
    huge = _body(tight_server, user="x" * 5000)
    declared = httpx.post(url, json=huge, headers=headers, timeout=10)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"

    def chunks():
        data = json.dumps(huge).encode()
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    streamed = httpx.post(url, content=chunks(), headers={**headers, "Content-Type": "application/json"}, timeout=10)
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "request_too_large"
    too_many = httpx.post(url, json=_body(tight_server, max_tokens=201), headers=headers, timeout=10)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "max_tokens"
    long_prompt = {"model": tight_server.model_id, "messages": [{"role": "user", "content": "heart " * 200}]}
    too_long = httpx.post(url, json=long_prompt, headers=headers, timeout=10)
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "messages"
    assert httpx.get(f"{tight_server.base_url}/healthz", timeout=10).status_code == 200


def test_non_streaming_client_that_hangs_up_stops_its_generation(tight_server: LiveServer) -> None:
    # Greedy, this question runs to about 120 tokens: far longer than the 0.3 s the client waits.
    body = json.dumps({"model": tight_server.model_id, "max_tokens": 200, "temperature": 0,
                       "messages": [{"role": "user", "content": "Describe the heart."}]}).encode()
    host, port = tight_server.base_url.removeprefix("http://").split(":")
    before = len(_ledger_payloads(tight_server))
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {tight_server.keys[Role.clinician]}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while _metric(tight_server, "appliance_api_active_sequences") > 0 or len(_ledger_payloads(tight_server)) == before:
        assert time.monotonic() < deadline, "the abandoned generation must stop"
        time.sleep(0.1)
    payload = _ledger_payloads(tight_server)[-1]
    assert payload["status"] == 499 and payload["reason"] == "cancelled" and payload["completion_tokens"] < 100
