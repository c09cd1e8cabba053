"""Fixtures for ledger tests: a keystore and ledgers shaped like what `deid run` and the API write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deid.keystore import Keystore, keyed_hash
from deid.ledger.auth import LedgerAuth
from deid.ledger.writer import LedgerWriter


def document_payload(index: int, secret: bytes, *, persons: int = 2, source: str | None = None) -> dict[str, Any]:
    """The payload `deid run` writes for one document (offsets, types and operators, never text)."""
    spans = [
        {"start": 10 * n, "end": 10 * n + 5, "entity_type": "PATIENT", "operator": "surrogate"} for n in range(persons)
    ]
    spans.append({"start": 100, "end": 110, "entity_type": "DATE", "operator": "date_shift"})
    return {
        "document_id": keyed_hash(secret, f"doc-{index}"),
        "source": source or f"note_{index % 3}.txt",
        "format": "text",
        "detector_version": "1.0.0",
        "rules_version": "2026.11",
        "settings_sha256": "a" * 64,
        "input_hmac_sha256": f"{index:064x}",
        "output_sha256": f"{index + 1_000_000:064x}",
        "entity_counts": {"PATIENT": persons, "DATE": 1} if persons else {"DATE": 1},
        "spans": spans if persons else spans[-1:],
    }


def api_payload(index: int) -> dict[str, Any]:
    """The payload the consultation API writes per request."""
    return {
        "key_id": "k-0001",
        "role": "clinician",
        "model_sha256": "b" * 64,
        "prompt_tokens": 40 + index,
        "completion_tokens": 12,
        "phi_types": ["DATE"],
        "latency_ms": 12.5,
        "request_id": f"req-{index:08d}",
        "endpoint": "/v1/chat/completions",
        "status": 200,
    }


@pytest.fixture()
def keystore(tmp_path: Path) -> Keystore:
    return Keystore.open(tmp_path / "keystore")


LedgerFactory = Callable[..., Path]


@pytest.fixture()
def make_ledger(tmp_path: Path, keystore: Keystore) -> LedgerFactory:
    """Build a closed ledger of ``documents`` document entries (checkpoints every ``every``)."""

    def build(documents: int = 20, every: int = 5, name: str = "deid.jsonl") -> Path:
        path = tmp_path / name
        secret = keystore.secret("document-id")
        with LedgerWriter.open(
            path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run", checkpoint_every=every
        ) as writer:
            for index in range(documents):
                writer.append("deid.document", document_payload(index, secret))
        return path

    return build
