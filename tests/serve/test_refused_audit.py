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
    main_server.app.state.services.ledger.flush_refusals()  # a fresh window: the first of each kind is written
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
    main_server.app.state.services.ledger.flush_refusals()
    before = len(_entries(main_server))
    path_canary = "Quortelby-1961"
    response = httpx.delete(
        f"{main_server.base_url}/v1/admin/keys/{path_canary}", headers=main_server.auth(Role.clinician), timeout=10
    )
    assert response.status_code == 403
    endpoints = [entry["payload"]["endpoint"] for entry in _entries(main_server)[before:] if entry.get("action") == "api.request"]
    assert endpoints == ["/v1/admin/keys/{key_id}"]
    assert path_canary not in main_server.app.state.services.ledger.path.read_text()


def _new_entries(server: LiveServer, before: int, action: str) -> list[dict]:
    return [entry["payload"] for entry in _entries(server)[before:] if entry.get("action") == action]


def test_a_flood_of_bad_keys_writes_a_bounded_number_of_entries(main_server: LiveServer) -> None:
    ledger = main_server.app.state.services.ledger
    ledger.flush_refusals()  # a fresh window: earlier tests' refusals are written out
    before = len(_entries(main_server))
    with httpx.Client(base_url=main_server.base_url, timeout=10) as client:
        statuses = {client.get("/v1/models", headers={"Authorization": f"Bearer {BOGUS_KEY}{n}"}).status_code for n in range(200)}
    assert statuses == {401}
    written = _entries(main_server)[before:]
    assert len([e for e in written if e.get("action") == "api.request"]) == 1  # the first of its kind, at once
    ledger.flush_refusals()  # what the window's timer does every refusal_window_seconds
    summaries = _new_entries(main_server, before, "api.refused")
    assert summaries == [{
        "endpoint": "/v1/models", "status": 401, "reason": "unauthenticated", "key_id": "none", "role": "none",
        "refused_count": 199, "window_seconds": summaries[0]["window_seconds"],
    }]
    assert len(_entries(main_server)) - before <= 3  # request entry + summary (+ a checkpoint at most)
    assert BOGUS_KEY not in ledger.path.read_text()
    assert verify_ledger(ledger.path, allow_unsealed=True).ok


def test_invalid_bodies_and_unknown_routes_are_recorded_as_refusals(main_server: LiveServer) -> None:
    main_server.app.state.services.ledger.flush_refusals()
    before = len(_entries(main_server))
    body_canary = "Vellacourt-Ambry"
    bad = httpx.post(
        f"{main_server.base_url}/v1/chat/completions", headers=main_server.auth(Role.clinician),
        json={"messages": body_canary}, timeout=10,
    )
    assert bad.status_code == 400
    assert httpx.get(f"{main_server.base_url}/v1/{body_canary}", timeout=10).status_code == 404
    refused = {(p["status"], p["reason"]): p for p in _new_entries(main_server, before, "api.request")}
    assert refused[(400, "invalid_request")]["endpoint"] == "/v1/chat/completions"
    assert refused[(400, "invalid_request")]["key_id"] != "none"
    assert refused[(404, "not_found")]["endpoint"] == "/unmatched"
    assert body_canary not in main_server.app.state.services.ledger.path.read_text()


def test_admin_actions_are_ledger_entries(main_server: LiveServer) -> None:
    before = len(_entries(main_server))
    admin = main_server.auth(Role.admin)
    created = httpx.post(f"{main_server.base_url}/v1/admin/keys", headers=admin, json={"role": "auditor", "label": "audit-team"}, timeout=10)
    assert created.status_code == 201
    new_id = created.json()["info"]["key_id"]
    assert httpx.delete(f"{main_server.base_url}/v1/admin/keys/{new_id}", headers=admin, timeout=10).status_code == 200
    actions = _new_entries(main_server, before, "api.admin")
    admin_id = main_server.app.state.services.auth.store.verify(main_server.keys[Role.admin]).key_id
    assert actions == [
        {"kind": "key.create", "actor_key_id": admin_id, "key_id": new_id, "role": "auditor"},
        {"kind": "key.revoke", "actor_key_id": admin_id, "key_id": new_id, "role": "auditor"},
    ]
    assert created.json()["key"] not in main_server.app.state.services.ledger.path.read_text()


def test_the_openapi_schema_needs_a_key(main_server: LiveServer) -> None:
    assert httpx.get(f"{main_server.base_url}/openapi.json", timeout=10).status_code == 401
    schema = httpx.get(f"{main_server.base_url}/openapi.json", headers=main_server.auth(Role.clinician), timeout=10)
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
