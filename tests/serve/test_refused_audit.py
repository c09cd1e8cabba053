"""Refused calls are audited too: a guessed or stolen key shows up in the ledger as 401s and 403s."""

from __future__ import annotations

import json

import httpx

from deid.ledger.verify import verify_ledger
from serve.auth.protocol import Role
from tests.serve.live import LiveServer

BOGUS_KEY = "mla_000000000000_guessed-Zq81"


def _entries(server: LiveServer) -> list[dict]:
    path = server.app.state.services.ledger.path
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_refused_requests_add_ledger_entries_without_the_key(main_server: LiveServer) -> None:
    base = main_server.base_url
    before = len(_entries(main_server))
    assert httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {BOGUS_KEY}"}, timeout=10).status_code == 401
    denied = httpx.get(f"{base}/v1/audit/status", headers=main_server.auth(Role.clinician), timeout=10)
    assert denied.status_code == 403

    payloads = [entry["payload"] for entry in _entries(main_server)[before:] if entry.get("action") == "api.request"]
    refused = {payload["status"]: payload for payload in payloads}
    assert refused[401]["reason"] == "unauthenticated" and refused[401]["key_id"] == "none"
    assert refused[401]["endpoint"] == "/v1/models"
    assert refused[403]["reason"] == "forbidden" and refused[403]["role"] == "clinician"
    assert refused[403]["key_id"] != "none" and refused[403]["endpoint"] == "/v1/audit/status"
    ledger = main_server.app.state.services.ledger.path
    assert BOGUS_KEY not in ledger.read_text() and main_server.keys[Role.clinician] not in ledger.read_text()
    assert verify_ledger(ledger, allow_unsealed=True).ok


def test_refused_request_records_the_route_not_the_raw_path(main_server: LiveServer) -> None:
    before = len(_entries(main_server))
    path_canary = "Quortelby-1961"
    response = httpx.delete(
        f"{main_server.base_url}/v1/admin/keys/{path_canary}", headers=main_server.auth(Role.clinician), timeout=10
    )
    assert response.status_code == 403
    endpoints = [entry["payload"]["endpoint"] for entry in _entries(main_server)[before:] if entry.get("action") == "api.request"]
    assert endpoints == ["/v1/admin/keys/{key_id}"]
    assert path_canary not in main_server.app.state.services.ledger.path.read_text()
