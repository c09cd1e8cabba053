"""Someone who can write the ledger file (and keystore.json) but holds no key cannot rewrite the record.

Each attack is tried the way the review reproduced it, and `appliance audit verify` is run on
the appliance the way an auditor runs it; the honest ways a ledger grows still verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deid.errors import KeystoreError, LedgerError
from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.entry import encode_entry
from deid.ledger.verify import verify_ledger
from deid.ledger.writer import LedgerWriter
from tests.deid.ledger.conftest import api_payload, document_payload
from tests.deid.ledger.test_cli_audit import appliance


def writer(path: Path, store: Keystore, **options: Any) -> LedgerWriter:
    return LedgerWriter.open(
        path, store.signing_key(), auth=LedgerAuth.from_keystore(store), actor="deid-run", **options
    )


def honest_ledger(home: Path, documents: int = 8, every: int = 3) -> Path:
    """Where the appliance keeps its ledger: 8 documents (0-10), checkpoints at 3, 7 and 10 (the close)."""
    store = Keystore.open(home / "keystore")
    path = home / "ledger" / "deid.jsonl"
    with writer(path, store, checkpoint_every=every) as ledger:
        for index in range(documents):
            ledger.append("deid.document", document_payload(index, store.secret("document-id")))
    return path


def forge_appends(path: Path, count: int) -> None:
    """Append entries the way an attacker without the key would: a correct chain, hashes recomputed."""
    lines = path.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    seq, prev = last["seq"], last["hash"]
    forged = []
    for index in range(count):
        seq += 1
        body = {
            "seq": seq,
            "time": "2026-12-01T00:00:00.000000Z",
            "actor": "deid-run",
            "action": "deid.document",
            "payload": document_payload(1000 + index, b"x" * 32),
            "prev": prev,
        }
        line, prev = encode_entry(body)
        forged.append(line)
    path.write_bytes(b"".join(lines + forged))


def auditor_verify(home: Path, path: Path, *extra: str) -> tuple[int, str]:
    done = appliance("audit", "verify", str(path), *extra, home=home)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr + done.stdout


def test_cut_back_to_the_first_checkpoint_is_refused(appliance_home: Path) -> None:
    path = honest_ledger(appliance_home)
    assert auditor_verify(appliance_home, path)[0] == 0
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))  # entries 0-2 and the checkpoint at 3: self-consistent
    assert verify_ledger(path, Keystore.open(appliance_home / "keystore").public_keys()).ok
    code, said = auditor_verify(appliance_home, path)
    assert code == 11
    assert "truncated" in said and "cut back" in said and "entry 4" in said


def test_forged_appends_are_refused(appliance_home: Path) -> None:
    path = honest_ledger(appliance_home)
    forge_appends(path, 2)
    code, said = auditor_verify(appliance_home, path, "--allow-unsealed")
    assert code == 11
    assert "unauthenticated" in said and "entry 11" in said


def test_forged_appends_are_not_resealed_by_a_later_run(appliance_home: Path) -> None:
    path = honest_ledger(appliance_home)
    forge_appends(path, 2)
    store = Keystore.open(appliance_home / "keystore")
    with pytest.raises(LedgerError, match="2 entries after the last checkpoint were not written by this appliance"):
        writer(path, store)
    code, said = auditor_verify(appliance_home, path)
    assert code == 11 and "entry 11" in said


def test_forged_appends_while_a_writer_is_open_are_not_sealed(appliance_home: Path) -> None:
    path = honest_ledger(appliance_home)
    store = Keystore.open(appliance_home / "keystore")
    running = writer(path, store, checkpoint_every=1000)
    running.append("api.request", api_payload(0))
    forge_appends(path, 1)
    with pytest.raises(LedgerError, match="not written by this appliance"):
        running.append("api.request", api_payload(1))
    with pytest.raises(LedgerError):
        running.close()
    code, said = auditor_verify(appliance_home, path, "--allow-unsealed")
    assert code == 11 and "unauthenticated" in said and "entry 12" in said


def test_forged_appends_resealed_by_a_stranger_key_are_refused(appliance_home: Path, tmp_path: Path) -> None:
    """Even an attacker sealing the forgery with a checkpoint of their own key gets nowhere."""
    path = honest_ledger(appliance_home)
    attacker = Keystore.open(tmp_path / "attacker")
    with LedgerWriter.open(path, attacker.signing_key(), auth=LedgerAuth.from_keystore(attacker), actor="x") as own:
        own.append("deid.document", document_payload(99, b"y" * 32))
    code, said = auditor_verify(appliance_home, path)
    assert code == 11 and "unauthenticated" in said and "entry 11" in said


def test_a_key_added_to_keystore_json_is_refused(appliance_home: Path, tmp_path: Path) -> None:
    path = honest_ledger(appliance_home)
    attacker = Keystore.open(tmp_path / "attacker")
    stolen_auth = LedgerAuth.from_keystore(attacker)
    # The attacker rewrites the whole ledger under their own key ...
    path.unlink()
    with LedgerWriter.open(path, attacker.signing_key(), auth=stolen_auth, actor="deid-run", checkpoint_every=3) as own:
        for index in range(8):
            own.append("deid.document", document_payload(index, b"z" * 32))
    # ... and lists that key in the appliance's keystore as a retired ledger key.
    store_file = appliance_home / "keystore" / "keystore.json"
    store = json.loads(store_file.read_text())
    info = attacker.keys()[0]
    store["signing"]["ledger"].insert(
        0,
        {
            "key_id": info.key_id,
            "public_pem": info.public_pem.decode("ascii"),
            "binding": "0" * 64,
            "private": None,
            "created": info.created,
            "retired": info.created,
        },
    )
    store_file.write_text(json.dumps(store))
    with pytest.raises(KeystoreError, match="did not create"):
        Keystore.open(appliance_home / "keystore").public_keys()
    code, said = auditor_verify(appliance_home, path)
    assert code != 0 and "did not create" in said and info.key_id in said


def test_a_removed_or_forged_head_record_is_refused(appliance_home: Path) -> None:
    path = honest_ledger(appliance_home)
    heads = sorted((appliance_home / "keystore" / "ledger-heads").iterdir())
    assert len(heads) == 1
    record = json.loads(heads[0].read_text())
    record["seq"] = 3
    heads[0].write_text(json.dumps(record))
    code, said = auditor_verify(appliance_home, path)
    assert code == 11 and "not written by this appliance" in said
    heads[0].unlink()
    code, said = auditor_verify(appliance_home, path)
    assert code == 11 and "no head record" in said


def test_honest_ledgers_still_verify(appliance_home: Path) -> None:
    path = honest_ledger(appliance_home)
    store = Keystore.open(appliance_home / "keystore")
    with writer(path, store) as second_run:
        second_run.append("deid.run", {"documents": 1})
    assert appliance("audit", "rotate-key", home=appliance_home).returncode == 0
    store = Keystore.open(appliance_home / "keystore")
    with writer(path, store) as after_rotation:
        after_rotation.append("deid.document", document_payload(50, store.secret("document-id")))
    code, said = auditor_verify(appliance_home, path)
    assert code == 0, said
    assert "entries authenticated" in said

    api = appliance_home / "ledger" / "api-host-8000.jsonl"
    service = writer(api, store, checkpoint_every=4)
    for index in range(6):
        service.append("api.request", api_payload(index))
    code, said = auditor_verify(appliance_home, api, "--allow-unsealed")
    assert code == 0, said
    assert "2 unsealed (allowed)" in said
    service.close()
    assert auditor_verify(appliance_home, api)[0] == 0
