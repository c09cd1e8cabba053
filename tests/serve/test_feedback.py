"""POST /v1/feedback on a live server: answers are kept de-identified, ratings become preference pairs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from serve.auth.protocol import Role
from serve.feedback.protocol import Rating
from serve.feedback.service import Rated, preference_pairs, store_path
from tests.serve.live import LiveServer

PATIENT = "Maria Quillfeatherzyx"


def _chat(server: LiveServer, content: str, *, stream: bool = False) -> str:
    body = {"model": server.model_id, "messages": [{"role": "user", "content": content}], "max_tokens": 6,
            "stream": stream, "temperature": 0}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body,
                      headers=server.auth(Role.clinician), timeout=120) as response:
        assert response.status_code == 200
        text = response.read().decode()
    if not stream:
        return str(json.loads(text)["id"])
    first = next(line for line in text.splitlines() if line.startswith("data: {"))
    return str(json.loads(first[6:])["id"])


def test_feedback_keeps_only_deidentified_text_and_exports_pairs(main_server: LiveServer, tmp_path: Path) -> None:
    base, clinician = main_server.base_url, main_server.auth(Role.clinician)
    rated = _chat(main_server, f"Patient {PATIENT}, phone 617-555-0199, has a cough. What should I ask?")
    streamed = _chat(main_server, f"Patient {PATIENT}, phone 617-555-0199, has a cough. What should I ask?",
                     stream=True)
    correction = f"Ask {PATIENT} about fever, sputum and smoking; call 617-555-0199 with results."
    down = httpx.post(f"{base}/v1/feedback", headers=clinician, timeout=60,
                      json={"response_id": rated, "rating": "down", "correction": correction})
    assert down.status_code == 200, down.text
    assert down.json()["corrected"] is True and down.json()["rating"] == "down"
    up = httpx.post(f"{base}/v1/feedback", headers=clinician, timeout=60, json={"response_id": streamed, "rating": "up"})
    assert up.status_code == 200, up.text

    unknown = httpx.post(f"{base}/v1/feedback", headers=clinician, timeout=30,
                         json={"response_id": "chatcmpl-0000", "rating": "up"})
    assert unknown.status_code == 404
    auditor = httpx.post(f"{base}/v1/feedback", headers=main_server.auth(Role.auditor), timeout=30,
                         json={"response_id": rated, "rating": "up"})
    assert auditor.status_code == 403
    bad = httpx.post(f"{base}/v1/feedback", headers=clinician, timeout=30,
                     json={"response_id": rated, "rating": "sideways"})
    assert 400 <= bad.status_code < 500 and "sideways" not in bad.text

    store = store_path(main_server.settings.home)
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(store) as db:
        kept = " ".join(str(v) for row in db.execute("SELECT * FROM answers UNION ALL SELECT prompt, answer, "
                                                     "correction, id, rating FROM feedback") for v in row)
    assert "Quillfeatherzyx" not in kept and "617-555-0199" not in kept
    assert "cough" in kept and "smoking" in kept  # the clinical content stays

    ledger = "".join(p.read_text() for p in main_server.settings.ledger_dir.glob("api-*.jsonl"))
    entries = [json.loads(line)["payload"] for line in ledger.splitlines() if line.strip()]
    feedback = [e for e in entries if e.get("endpoint") == "/v1/feedback" and e.get("status") == 200]
    assert {e["reason"] for e in feedback} >= {"feedback_down_corrected", "feedback_up"}
    assert "smoking" not in ledger and "Quillfeatherzyx" not in ledger

    out = tmp_path / "prefs.jsonl"
    env = {**os.environ, "APPLIANCE_HOME": str(main_server.settings.home)}
    env.pop("APPLIANCE_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "appliance", "feedback", "export", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert pairs and all(set(p) == {"prompt", "chosen", "rejected"} for p in pairs)
    assert any("smoking" in p["chosen"] for p in pairs)
    assert "Quillfeatherzyx" not in out.read_text()


def test_pairs_from_ratings() -> None:
    ratings = [Rated("a", Rating.up, "Q1", "good answer", None), Rated("b", Rating.down, "Q1", "bad answer", None),
               Rated("c", Rating.down, "Q2", "wrong", "right"), Rated("d", Rating.down, "Q3", "lonely", None)]
    assert preference_pairs(ratings) == [
        {"prompt": "Q2", "chosen": "right", "rejected": "wrong"},
        {"prompt": "Q1", "chosen": "good answer", "rejected": "bad answer"},
    ]
