"""The auditor's report: right counts and flags, self-contained, and no raw text even when raw files are near."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from deid.keystore import Keystore, keyed_hash
from deid.ledger.auth import LedgerAuth
from deid.ledger.entry import encode_entry
from deid.ledger.report import build_report
from deid.ledger.report_html import render_html
from deid.ledger.verify import verify_ledger
from deid.ledger.writer import LedgerWriter
from tests.deid.ledger.conftest import api_payload

CANARY = "Zebulon Quixtar"
RAW = {
    "a.txt": f"Patient {CANARY} was admitted on 03/04/2021 with chest pain.",
    "b.txt": f"Seen by Dr. {CANARY}; MRN 99812-QX. Follow up in clinic.",
    "c.txt": "Vital signs stable. No acute distress.",  # nothing to remove
}
DEIDENTIFIED = {
    "a.txt": "Patient Harold Ives was admitted on 05/06/2021 with chest pain.",
    "b.txt": "Seen by Dr. Mara Lind; MRN 40417-TT. Follow up in clinic.",
    "c.txt": RAW["c.txt"],
}
SPANS: dict[str, list[tuple[int, int, str, str]]] = {
    "a.txt": [(8, 23, "PATIENT", "surrogate"), (40, 50, "DATE", "date_shift")],
    "b.txt": [(12, 27, "CLINICIAN", "surrogate"), (29, 41, "MRN", "surrogate")],
    "c.txt": [],
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture()
def audited(tmp_path: Path, keystore: Keystore) -> dict[str, Any]:
    """A de-identification run laid out as `deid run` leaves it: raw inputs, outputs, ledger."""
    raw_dir, out_dir = tmp_path / "raw", tmp_path / "deidentified"
    raw_dir.mkdir()
    (out_dir / "nested").mkdir(parents=True)
    for name, text in RAW.items():
        (raw_dir / name).write_text(text)
        (out_dir / name).write_text(DEIDENTIFIED[name])
    # A raw copy that wandered into the output tree must never be quoted: its hash is not the output's.
    (out_dir / "nested" / "a.txt").write_text(RAW["a.txt"])
    ledger = tmp_path / "deid.jsonl"
    secret = keystore.secret("document-id")
    with LedgerWriter.open(ledger, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run", checkpoint_every=4) as writer:
        for name in RAW:
            counts: dict[str, int] = {}
            for _, _, kind, _ in SPANS[name]:
                counts[kind] = counts.get(kind, 0) + 1
            writer.append(
                "deid.document",
                {
                    "document_id": keyed_hash(secret, name),
                    "source": name,
                    "format": "text",
                    "detector_version": "1.0.0",
                    "rules_version": "2026.11",
                    "settings_sha256": "c" * 64,
                    "input_hmac_sha256": keyed_hash(secret, RAW[name]),
                    "output_sha256": sha(DEIDENTIFIED[name]),
                    "unchanged": RAW[name] == DEIDENTIFIED[name],
                    "entity_counts": counts,
                    "spans": [
                        {"start": s, "end": e, "entity_type": t, "operator": o} for s, e, t, o in SPANS[name]
                    ],
                },
            )
        writer.append("api.request", api_payload(1))
    return {"ledger": ledger, "out": out_dir, "raw": raw_dir, "keys": keystore.public_keys()}


def test_report_counts_flags_and_coverage(audited: dict[str, Any]) -> None:
    verification = verify_ledger(audited["ledger"], audited["keys"])
    report = build_report(audited["ledger"], verification, deidentified_dir=audited["out"], sample_size=10, seed=7)
    assert report["ledger"]["verification"]["ok"] is True
    assert report["documents"] == 3 and report["entities"] == 4
    assert report["by_type"] == {"PATIENT": 1, "DATE": 1, "CLINICIAN": 1, "MRN": 1}
    assert report["by_source"]["c.txt"] == {"documents": 1, "entities": 0, "no_detections": 1}
    assert [row["source"] for row in report["flagged_no_detections"]] == ["c.txt"]
    coverage = {row["letter"]: row for row in report["hipaa_coverage"]}
    assert len(coverage) == 18
    assert coverage["A"]["found"] == 2 and coverage["C"]["found"] == 1 and coverage["H"]["found"] == 1
    assert coverage["D"]["status"].startswith("covered") and coverage["P"]["status"].startswith("not applicable")
    assert report["api"]["requests"] == 1 and report["api"]["by_role"] == {"clinician": 1}
    assert report["timeline"]["buckets"][0]["documents"] == 3

    spot = {doc["source"]: doc for doc in report["spot_check"]["documents"]}
    assert spot["a.txt"]["excerpt"] == DEIDENTIFIED["a.txt"]
    assert spot["b.txt"]["excerpt"] == DEIDENTIFIED["b.txt"]
    assert "excerpt" not in spot["c.txt"] and spot["c.txt"]["status"].startswith("withheld")


def test_report_has_no_canary_and_no_external_assets(audited: dict[str, Any]) -> None:
    verification = verify_ledger(audited["ledger"], audited["keys"])
    report = build_report(audited["ledger"], verification, deidentified_dir=audited["out"], sample_size=10, seed=1)
    page = render_html(report)
    data = json.dumps(report)
    for text in (page, data):
        for canary in ("Zebulon", "Quixtar", "99812"):
            assert canary not in text
    assert "<svg" in page and "<rect" in page
    assert not re.search(r"<script|<link|<img|<iframe|src=|@import|url\(", page, re.IGNORECASE)
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]


def test_forged_entry_with_text_is_kept_out_of_the_report(audited: dict[str, Any], tmp_path: Path) -> None:
    """Someone with file access appends an entry carrying record text: verification fails, the report stays clean."""
    lines = audited["ledger"].read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    forged = {
        "seq": last["seq"] + 1,
        "time": last["time"],
        "actor": "intruder",
        "action": "deid.document",
        "payload": {"document_id": "d" * 64, "source": "x.txt", "entity_counts": {}, "note": f"{CANARY} MRN 99812"},
        "prev": last["hash"],
    }
    forged_action = {**forged, "seq": forged["seq"] + 1, "action": f"note for {CANARY}", "payload": {}}
    forged_action["prev"] = encode_entry(forged)[1]
    audited["ledger"].write_bytes(b"".join(lines) + encode_entry(forged)[0] + encode_entry(forged_action)[0])
    verification = verify_ledger(audited["ledger"], audited["keys"])
    assert not verification.ok and verification.problem is not None
    report = build_report(audited["ledger"], verification, deidentified_dir=audited["out"], seed=3)
    assert report["entries_refused_by_policy"] == 2
    page = render_html(report)
    assert "NOT intact" in page
    assert CANARY not in page and "99812" not in json.dumps(report)
