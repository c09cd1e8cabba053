"""A key revoked while its request runs stops that request: stream, queued stream or plain answer.

Real server, real llama.cpp on the embedded model (the one-slot server, so a slot that was not
freed would show). Revocation goes both ways it happens in practice: the admin API from another
request, and the key file itself (what ``appliance keys revoke`` and other replicas do).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx

from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role
from tests.serve.live import LiveServer

LONG = {"messages": [{"role": "user", "content": "Describe the heart."}], "max_tokens": 200, "temperature": 0.9, "seed": 1}
# The server re-checks every 0.5 s; the rest is one decode step and the way back, on a busy runner.
STOP_WITHIN_S = 5.0


def _new_key(server: LiveServer) -> tuple[str, str]:
    key, info = ApiKeyStore(server.settings.api_keys_file).create(Role.clinician, "revocation test")
    return key, info.key_id


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _requests_of(server: LiveServer, key_id: str, count: int = 1) -> list[dict]:
    """The request entries (answered or refused) of ``key_id``, once ``count`` are written."""
    ledger = next(server.settings.ledger_dir.glob("api-*.jsonl"))
    deadline = time.monotonic() + STOP_WITHIN_S
    while True:
        entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
        found = [e["payload"] for e in entries if e["action"] == "api.request" and e["payload"]["key_id"] == key_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _data(lines: Iterator[str]) -> Iterator[str]:
    return (line[len("data: "):] for line in lines if line.startswith("data: "))


def _has_text(data: str) -> bool:
    return data != "[DONE]" and any(
        (choice.get("delta", {}).get("content") or choice.get("text")) for choice in json.loads(data).get("choices", [])
    )


def _wait_until_idle(server: LiveServer) -> None:
    engine = server.app.state.services.models.engine
    deadline = time.monotonic() + STOP_WITHIN_S
    while engine.active or engine.queue_depth:
        assert time.monotonic() < deadline, "the revoked request's slot was not freed"
        time.sleep(0.05)


def test_revoking_a_key_stops_its_running_stream(tight_server: LiveServer) -> None:
    base = tight_server.base_url
    key, key_id = _new_key(tight_server)
    body = {"model": tight_server.model_id, **LONG, "stream": True}
    revoked_at: list[float] = []

    def revoke() -> None:
        response = httpx.delete(f"{base}/v1/admin/keys/{key_id}", headers=tight_server.auth(Role.admin), timeout=10)
        assert response.status_code == 200
        revoked_at.append(time.monotonic())

    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=_bearer(key), timeout=60) as response:
        assert response.status_code == 200
        data = _data(response.iter_lines())
        received = [next(item for item in data if _has_text(item))]
        revoker = threading.Thread(target=revoke)
        revoker.start()
        received += list(data)
        ended = time.monotonic()
        revoker.join()

    assert received[-1] == "[DONE]"
    error = json.loads(received[-2])["error"]
    assert error["type"] == "key_revoked" and error["code"] == "key_revoked"
    assert ended - revoked_at[0] < STOP_WITHIN_S
    finishes = [c.get("finish_reason") for item in received[:-2] for c in json.loads(item).get("choices", [])]
    assert set(finishes) == {None}, "the answer must not run to its end"
    _wait_until_idle(tight_server)

    (entry,) = _requests_of(tight_server, key_id)
    assert entry["endpoint"] == "/v1/chat/completions"
    assert entry["status"] == 401 and entry["reason"] == "key_revoked"
    assert 0 < entry["completion_tokens"] < LONG["max_tokens"]

    # The key is refused from now on; another key is served, on the slot the stream left.
    again = httpx.post(f"{base}/v1/chat/completions", json={**body, "stream": False}, headers=_bearer(key), timeout=30)
    assert again.status_code == 401
    other, _ = _new_key(tight_server)
    short = {"model": tight_server.model_id, "messages": LONG["messages"], "max_tokens": 4}
    answer = httpx.post(f"{base}/v1/chat/completions", json=short, headers=_bearer(other), timeout=60)
    assert answer.status_code == 200 and answer.json()["choices"][0]["finish_reason"] == "length"


def test_revoking_the_key_in_the_key_file_ends_a_queued_stream_at_once(tight_server: LiveServer) -> None:
    base = tight_server.base_url
    running_key, running_id = _new_key(tight_server)
    queued_key, queued_id = _new_key(tight_server)
    chat = {"model": tight_server.model_id, **LONG, "stream": True}
    completion = {"model": tight_server.model_id, "prompt": "The heart is", "max_tokens": 200, "stream": True}
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json=chat, headers=_bearer(running_key), timeout=60
    ) as running:
        running_data = _data(running.iter_lines())
        assert next(item for item in running_data if _has_text(item))
        with httpx.stream(
            "POST", f"{base}/v1/completions", json=completion, headers=_bearer(queued_key), timeout=60
        ) as queued:
            assert queued.status_code == 200
            assert tight_server.app.state.services.models.engine.queue_depth == 1
            ApiKeyStore(tight_server.settings.api_keys_file).revoke(queued_id)  # what `appliance keys revoke` does
            revoked_at = time.monotonic()
            received = list(_data(queued.iter_lines()))
            ended = time.monotonic()
        # The stream on the slot goes on: only the revoked key's request stopped.
        assert next(item for item in running_data if _has_text(item))
    assert received[-1] == "[DONE]" and json.loads(received[-2])["error"]["type"] == "key_revoked"
    assert not [item for item in received[:-2] if _has_text(item)]
    assert ended - revoked_at < STOP_WITHIN_S
    _wait_until_idle(tight_server)
    (entry,) = _requests_of(tight_server, queued_id)
    assert entry["endpoint"] == "/v1/completions" and entry["status"] == 401 and entry["reason"] == "key_revoked"
    assert entry["completion_tokens"] == 0
    assert [p["status"] for p in _requests_of(tight_server, running_id)] == [499]  # its client hung up


def test_revoking_a_key_during_a_plain_request_answers_401(tight_server: LiveServer) -> None:
    base = tight_server.base_url
    key, key_id = _new_key(tight_server)
    engine = tight_server.app.state.services.models.engine
    body = {"model": tight_server.model_id, **LONG}
    answers: list[httpx.Response] = []
    asking = threading.Thread(
        target=lambda: answers.append(httpx.post(f"{base}/v1/chat/completions", json=body, headers=_bearer(key), timeout=60))
    )
    asking.start()
    deadline = time.monotonic() + 30
    while not engine.active:
        assert time.monotonic() < deadline and asking.is_alive(), "the request did not start generating"
        time.sleep(0.02)
    ApiKeyStore(tight_server.settings.api_keys_file).revoke(key_id)
    asking.join(timeout=STOP_WITHIN_S)
    assert not asking.is_alive()
    (answer,) = answers
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "key_revoked"
    _wait_until_idle(tight_server)
    # One entry for the request, with what it used; the refusal is not counted a second time.
    (entry,) = _requests_of(tight_server, key_id)
    assert entry["status"] == 401 and entry["reason"] == "key_revoked" and entry["endpoint"] == "/v1/chat/completions"
    assert entry["completion_tokens"] < LONG["max_tokens"]
