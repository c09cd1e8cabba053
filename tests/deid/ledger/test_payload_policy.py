"""Record text cannot get into the ledger: canary PHI in any payload shape is refused and never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.payload import LedgerPayloadError, validate_payload
from deid.ledger.verify import verify_ledger
from deid.ledger.writer import LedgerWriter
from tests.deid.ledger.conftest import api_payload, document_payload

CANARY_NAME = "Zebulon Quixtar"
CANARY_MRN = "MRN 99812-QX"
CANARY_SENTENCE = f"Patient {CANARY_NAME} ({CANARY_MRN}) seen for chest pain."


def planted(secret: bytes) -> list[dict[str, Any]]:
    """The ways a careless caller might slip record text into a de-identification entry."""
    base = document_payload(1, secret)
    return [
        {**base, "note": CANARY_SENTENCE},
        {**base, "source": CANARY_SENTENCE},
        {**base, "source": "Zebulon Quixtar.txt"},
        {**base, "source": "../Zebulon/notes.txt"},
        {**base, "format": CANARY_NAME},
        {**base, "detector_version": CANARY_SENTENCE},
        {**base, "document_id": CANARY_MRN},
        {**base, "input_sha256": CANARY_NAME},
        {**base, "entity_counts": {CANARY_NAME: 1}},
        {**base, "entity_counts": {"PATIENT": CANARY_NAME}},
        {**base, "spans": [{"start": 0, "end": 15, "entity_type": "PATIENT", "operator": "surrogate", "text": CANARY_NAME}]},
        {**base, "spans": [{"start": 0, "end": 15, "entity_type": CANARY_NAME, "operator": "surrogate"}]},
        {**base, "spans": [{"start": 0, "end": 15, "entity_type": "PATIENT", "operator": CANARY_NAME}]},
        {**base, "spans": [CANARY_SENTENCE]},
        {**base, "phi_types": [CANARY_NAME]},
        {**base, "request_id": CANARY_SENTENCE},
        {**base, "original_text_sha256": CANARY_SENTENCE},
        {**base, CANARY_NAME: 1},
        {**base, "zebulon_quixtar": 1},
        {**base, "extra": {"nested": CANARY_SENTENCE}},
        {**base, "prompt_tokens": CANARY_NAME},
        {**base, "status": CANARY_SENTENCE},
        {**base, "endpoint": f"/v1/{CANARY_NAME}"},
    ]


def test_real_payloads_are_accepted(keystore: Keystore) -> None:
    validate_payload(document_payload(1, keystore.secret("document-id")))
    validate_payload(api_payload(1))


def test_every_planted_canary_is_refused_and_never_echoed(keystore: Keystore, tmp_path: Path) -> None:
    path = tmp_path / "deid.jsonl"
    secret = keystore.secret("document-id")
    attempts = planted(secret)
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run", checkpoint_every=3) as writer:
        writer.append("deid.document", document_payload(0, secret))
        for payload in attempts:
            with pytest.raises(LedgerPayloadError) as refused:
                writer.append("deid.document", payload)
            message = str(refused.value)
            for canary in ("zebulon", "quixtar", "99812"):
                assert canary not in message.lower()
        writer.append("deid.document", document_payload(2, secret))
    text = path.read_text()
    for canary in ("Zebulon", "Quixtar", "99812"):
        assert canary not in text
    result = verify_ledger(path, keystore.public_keys())
    assert result.ok and result.entries == 3  # two documents and the closing checkpoint: nothing half-written


@pytest.mark.parametrize(
    "payload",
    [
        [("not", "a dict")],
        {"latency_ms": float("nan")},
        {"prompt_tokens": -1},
        {"prompt_tokens": True},
        {"spans": [{"start": 9, "end": 3, "entity_type": "DATE", "operator": "redact"}]},
    ],
)
def test_malformed_values_are_refused(payload: Any) -> None:
    with pytest.raises(LedgerPayloadError):
        validate_payload(payload)
