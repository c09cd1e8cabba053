"""No prompt or answer text in any log, metric, error or ledger entry; PHI types are recorded."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from serve.auth.protocol import Role
from tests.serve.live import LiveServer

CANARY = "Quillfeatherzyx"
CLIENT_LOGGERS = ("httpx", "httpcore", "openai")


def test_canary_reaches_no_log_metric_error_or_ledger(
    main_server: LiveServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    base, headers = main_server.base_url, main_server.auth(Role.clinician)
    prompt = f"Patient Maria {CANARY}, born 04/12/1961, has a cough. What should I ask about?"
    answer = httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": main_server.model_id, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8},
        headers=headers, timeout=120,
    )
    assert answer.status_code == 200
    consult = httpx.post(
        f"{base}/v1/consult", json={"question": f"Is {CANARY} at risk?", "max_tokens": 4}, headers=headers, timeout=120
    )
    assert consult.status_code == 200
    refused = [
        httpx.post(f"{base}/v1/chat/completions", headers=headers, timeout=30, json=body)
        for body in (
            {"model": main_server.model_id, "messages": [{"role": CANARY, "content": "x"}]},
            {"model": CANARY, "messages": [{"role": "user", "content": CANARY}]},
            {"model": main_server.model_id, "messages": [{"role": "user", "content": CANARY}], "temperature": CANARY},
            {"model": main_server.model_id, "messages": CANARY},
        )
    ]
    refused.append(httpx.post(f"{base}/v1/consult", headers=headers, timeout=30, json={"question": "q", CANARY: CANARY}))
    assert all(400 <= r.status_code < 500 for r in refused)
    for response in refused:
        assert CANARY not in response.text, "errors must not echo request content"

    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert CANARY not in metrics
    server_logs = [r.getMessage() for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert not [line for line in server_logs if CANARY in line]
    captured = capfd.readouterr()
    assert CANARY not in captured.out and CANARY not in captured.err

    ledger_file = next(main_server.settings.ledger_dir.glob("api-*.jsonl"))
    ledger = ledger_file.read_text()
    assert CANARY not in ledger and "Maria" not in ledger and "cough" not in ledger
    entries = [json.loads(line) for line in ledger.splitlines() if line.strip()]
    request_ids = {answer.json()["id"], consult.json()["id"]}
    mine = [e["payload"] for e in entries if e.get("payload", {}).get("request_id") in request_ids]
    assert len(mine) == 2
    chat_entry = next(p for p in mine if p["endpoint"] == "/v1/chat/completions")
    assert "DATE" in chat_entry["phi_types"] or "DATE_TIME" in chat_entry["phi_types"]
    assert len(chat_entry["phi_types"]) >= 2, "the name is found too"
    assert chat_entry["role"] == "clinician" and chat_entry["completion_tokens"] == 8
    assert len(chat_entry["model_sha256"]) == 64 and chat_entry["latency_ms"] >= 0

    report = httpx.get(f"{base}/v1/audit/report", headers=main_server.auth(Role.auditor), timeout=10).json()
    assert CANARY not in json.dumps(report) and report["requests"] >= 2


def test_redaction_replaces_phi_before_the_model(main_server: LiveServer) -> None:
    from serve.privacy.service import PromptPrivacy

    detector = main_server.app.state.services.inference.privacy.detector
    assert detector is not None
    screened = PromptPrivacy(detector, redact_prompts=True).screen(
        [f"Patient Maria {CANARY} was seen on 04/12/2021 for a cough."]
    )
    assert CANARY not in screened.texts[0] and "04/12/2021" not in screened.texts[0]
    assert "[" in screened.texts[0] and "cough" in screened.texts[0]
    assert screened.phi_types
