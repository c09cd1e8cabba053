"""The re-identification vault: originals sealed at rest, every reveal ledgered first, nothing leaked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deid.keystore import Keystore, keyed_hash
from deid.ledger.auth import LedgerAuth
from deid.ledger.payload import LedgerPayloadError
from deid.ledger.verify import verify_ledger
from deid.ledger.writer import LedgerWriter
from deid.vault import Vault, VaultError

ORIGINAL = "Zebulon Quixtar"
SURROGATE = "Harold Ives"


def test_reveal_returns_the_original_and_is_ledgered(keystore: Keystore, tmp_path: Path) -> None:
    document = keyed_hash(keystore.secret("document-id"), "note-1")
    ledger = tmp_path / "deid.jsonl"
    with Vault.open(tmp_path / "vault" / "reid.sqlite", keystore.secret("vault")) as vault:
        assert vault.put_many(document, [(SURROGATE, ORIGINAL, "PATIENT"), ("05/06/2021", "03/04/2021", "DATE")]) == 2
        with LedgerWriter.open(ledger, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="privacy-officer") as writer:
            assert vault.reveal(document, SURROGATE, ledger=writer, reason="court-order-17") == ORIGINAL
            with pytest.raises(VaultError, match="recorded"):
                vault.reveal(document, "Nobody Known", ledger=writer, reason="court-order-17")
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    accesses = [e["payload"] for e in entries if e["action"] == "vault.access"]
    assert [(a["granted"], a.get("entity_type")) for a in accesses] == [(True, "PATIENT"), (False, None)]
    assert all(a["reason"] == "court-order-17" and a["document_id"] == document for a in accesses)
    assert verify_ledger(ledger, keystore.public_keys()).ok
    for stored in (ledger.read_bytes(), (tmp_path / "vault" / "reid.sqlite").read_bytes()):
        assert ORIGINAL.encode() not in stored and SURROGATE.encode() not in stored
    assert oct((tmp_path / "vault" / "reid.sqlite").stat().st_mode & 0o777) == "0o600"


def test_a_different_key_reveals_nothing(keystore: Keystore, tmp_path: Path) -> None:
    path = tmp_path / "reid.sqlite"
    with Vault.open(path, keystore.secret("vault")) as vault:
        vault.put_many("a" * 64, [(SURROGATE, ORIGINAL, "PATIENT")])
    with (
        Vault.open(path, keystore.secret("another")) as vault,
        LedgerWriter.open(tmp_path / "l.jsonl", keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="x") as writer,
        pytest.raises(VaultError),
    ):
        vault.reveal("a" * 64, SURROGATE, ledger=writer, reason="test")


def test_no_reveal_when_the_access_cannot_be_ledgered(keystore: Keystore, tmp_path: Path) -> None:
    """A reason that the ledger refuses (free text) stops the reveal: no unrecorded access."""
    with (
        Vault.open(tmp_path / "reid.sqlite", keystore.secret("vault")) as vault,
        LedgerWriter.open(tmp_path / "l.jsonl", keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="x") as writer,
    ):
        vault.put_many("a" * 64, [(SURROGATE, ORIGINAL, "PATIENT")])
        with pytest.raises(LedgerPayloadError, match="reason"):
            vault.reveal("a" * 64, SURROGATE, ledger=writer, reason="because the patient Zebulon asked")


def test_cli_reveal_is_off_by_default_and_works_when_enabled(appliance_home: Path) -> None:
    store = Keystore.open(appliance_home / "keystore")
    ledger = appliance_home / "ledger" / "deid.jsonl"
    LedgerWriter.open(ledger, store.signing_key(), auth=LedgerAuth.from_keystore(store), actor="deid-run").close()
    with Vault.open(appliance_home / "vault" / "reid.sqlite", store.secret("vault")) as vault:
        vault.put_many("b" * 64, [(SURROGATE, ORIGINAL, "PATIENT")])
    command = [sys.executable, "-m", "appliance", "audit", "reveal", "b" * 64, SURROGATE, "--reason", "irb-42"]
    environment = {**os.environ, "APPLIANCE_HOME": str(appliance_home)}
    cwd = Path(__file__).resolve().parents[3]
    off = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd, timeout=120)
    assert off.returncode == 12 and "disabled" in off.stderr
    environment["APPLIANCE_LEDGER__VAULT_ENABLED"] = "true"
    on = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd, timeout=120)
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == ORIGINAL
    assert verify_ledger(ledger, store.public_keys()).ok


def test_deid_run_fills_the_vault_only_when_enabled(appliance_home: Path, tmp_path: Path) -> None:
    """A run with the vault on seals every fake with its original; the auditor can then reveal one."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "visit.txt").write_text(f"Pt {ORIGINAL} seen 03/14/2021 at clinic.\n")
    cwd = Path(__file__).resolve().parents[3]
    environment = {**os.environ, "APPLIANCE_HOME": str(appliance_home)}

    def appliance(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=300
        )

    off = appliance("deid", "run", str(notes), "--out", str(tmp_path / "off"))
    assert off.returncode == 0, off.stderr
    assert not (appliance_home / "vault").exists()

    environment["APPLIANCE_LEDGER__VAULT_ENABLED"] = "true"
    on = appliance("deid", "run", str(notes), "--out", str(tmp_path / "on"), "--workers", "2")
    assert on.returncode == 0, on.stderr
    fake_name = (tmp_path / "on" / "visit.txt").read_text().split(" seen ")[0].removeprefix("Pt ")
    assert fake_name != ORIGINAL
    vault_file = appliance_home / "vault" / "reid.sqlite"
    assert ORIGINAL.encode() not in vault_file.read_bytes() and fake_name.encode() not in vault_file.read_bytes()

    ledger = appliance_home / "ledger" / "deid.jsonl"
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    document = [e["payload"]["document_id"] for e in entries if e["action"] == "deid.document"][-1]
    revealed = appliance("audit", "reveal", document, fake_name, "--reason", "irb-42")
    assert revealed.returncode == 0, revealed.stderr
    assert revealed.stdout.strip() == ORIGINAL
    store = Keystore.open(appliance_home / "keystore")
    assert verify_ledger(ledger, store.public_keys()).ok
