"""`appliance audit` as an auditor runs it: exit codes, one-line reasons, exported keys, report files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.writer import LedgerWriter
from tests.deid.ledger.conftest import document_payload

REPO = Path(__file__).resolve().parents[3]


def appliance(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APPLIANCE_HOME": str(home)}
    environment.pop("APPLIANCE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=120,
    )


def default_ledger(home: Path, documents: int = 8) -> Path:
    """A ledger where the appliance keeps it, signed with the appliance keystore's key."""
    store = Keystore.open(home / "keystore")
    path = home / "ledger" / "deid.jsonl"
    with LedgerWriter.open(path, store.signing_key(), auth=LedgerAuth.from_keystore(store), actor="deid-run", checkpoint_every=3) as writer:
        for index in range(documents):
            writer.append("deid.document", document_payload(index, store.secret("document-id")))
    return path


def test_verify_intact_then_tampered(appliance_home: Path) -> None:
    path = default_ledger(appliance_home)
    done = appliance("audit", "verify", home=appliance_home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("intact: 11 entries, 3 signed checkpoints")

    lines = path.read_bytes().splitlines(keepends=True)
    del lines[4]
    path.write_bytes(b"".join(lines))
    done = appliance("audit", "verify", str(path), home=appliance_home)
    assert done.returncode == 11
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: entry 4: deleted: entry 4 is missing"]


def test_exported_key_verifies_and_a_stranger_key_is_refused(appliance_home: Path, tmp_path: Path) -> None:
    path = default_ledger(appliance_home)
    pem = tmp_path / "auditor.pem"
    done = appliance("audit", "export-key", "--out", str(pem), home=appliance_home)
    assert done.returncode == 0, done.stderr
    done = appliance("audit", "verify", str(path), "--public-key", str(pem), "--json", home=appliance_home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signatures_checked"] is True

    stranger = tmp_path / "stranger.pem"
    Keystore.open(tmp_path / "other").export_public_key("ledger", stranger)
    done = appliance("audit", "verify", str(path), "--public-key", str(stranger), home=appliance_home)
    assert done.returncode == 11
    assert "wrong_key" in done.stderr and "entry 3" in done.stderr


def test_verify_without_keystore_or_key_is_a_clear_error(tmp_path: Path, appliance_home: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    ledger.write_text("")
    done = appliance("audit", "verify", str(ledger), home=appliance_home)
    assert done.returncode == 9
    assert done.stderr.strip().startswith("error: no keystore") and "--public-key" in done.stderr
