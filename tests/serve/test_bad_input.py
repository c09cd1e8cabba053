"""Hostile and broken requests: only 4xx answers, OpenAI-shaped, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

from serve.auth.protocol import Role
from tests.serve.live import LiveServer

GOOD = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2}


def _cases(model: str) -> list[tuple[str, str, bytes | None, dict[str, str]]]:
    json_type = {"Content-Type": "application/json"}
    return [
        ("POST", "/v1/chat/completions", b'{"model": "x", "messages": [', json_type),
        ("POST", "/v1/chat/completions", b"", json_type),
        ("POST", "/v1/chat/completions", b"[1, 2, 3]", json_type),
        ("POST", "/v1/chat/completions", b'"just a string"', json_type),
        (
            "POST",
            "/v1/chat/completions",
            b'{"model": "' + model.encode() + b'", "messages": [{"role": "user", "content": "\xff\xfe\xc3("}]}',
            json_type,
        ),
        ("POST", "/v1/chat/completions", b"\x80\x81\x82\x83", json_type),
        ("POST", "/v1/chat/completions", b'{"model": 5, "messages": {"role": "user"}}', json_type),
        ("POST", "/v1/chat/completions", b'{"model": "m", "messages": [], "max_tokens": -1}', json_type),
        ("POST", "/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', json_type),
        ("POST", "/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3}', json_type),
        ("POST", "/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e309}', json_type),
        (
            "POST",
            "/v1/chat/completions",
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 99999999999999999999999}',
            json_type,
        ),
        ("POST", "/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]}', json_type),
        ("POST", "/v1/chat/completions", b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}', json_type),
        ("POST", "/v1/chat/completions", b"model=x", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("POST", "/v1/chat/completions", b"{" * 5000 + b"}" * 5000, json_type),
        ("POST", "/v1/chat/completions", b"x" * 20000, json_type),
        ("POST", "/v1/consult", b'{"question": ""}', json_type),
        ("POST", "/v1/consult", b'{"question": "q", "context": 7}', json_type),
        ("POST", "/v1/consult", b'{"question": "q", "max_tokens": 100000}', json_type),
        ("GET", "/v1/chat/completions", None, {}),
        ("DELETE", "/v1/models", None, {}),
        ("GET", "/v1/nothing-here", None, {}),
        ("GET", "/static/../serve/config.py", None, {}),
        ("GET", "/static/%2e%2e/%2e%2e/etc/passwd", None, {}),
        ("DELETE", "/v1/admin/keys/%00", None, {}),
    ]


def test_bad_requests_get_4xx_and_server_keeps_serving(fuzz_server: LiveServer) -> None:
    auth = fuzz_server.auth(Role.clinician)
    with httpx.Client(base_url=fuzz_server.base_url, timeout=60) as http:
        for method, path, body, headers in _cases(fuzz_server.model_id):
            response = http.request(method, path, content=body, headers={**auth, **headers})
            assert 400 <= response.status_code < 500, (method, path, body[:40] if body else None, response.status_code)
            if path.startswith("/v1/") and response.headers.get("content-type", "").startswith("application/json"):
                error = response.json()["error"]
                assert set(error) == {"message", "type", "param", "code"}
        assert http.get("/healthz").status_code == 200
        ok = http.post("/v1/chat/completions", json={"model": fuzz_server.model_id, **GOOD}, headers=auth)
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] is not None


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer mla_", "Bearer mla_x_y_z", "bearer " + "a" * 5000])
def test_malformed_credentials_are_401(fuzz_server: LiveServer, header: str) -> None:
    response = httpx.get(f"{fuzz_server.base_url}/v1/models", headers={"Authorization": header}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_cors_is_off_unless_configured(fuzz_server: LiveServer) -> None:
    preflight = httpx.options(
        f"{fuzz_server.base_url}/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in preflight.headers
