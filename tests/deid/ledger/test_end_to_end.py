"""A real de-identification run, then the auditor's tools on its ledger: canary PHI appears nowhere they write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deid.config import DeidConfig
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.ledger.report import build_report
from deid.ledger.report_html import render_html
from deid.ledger.verify import verify_ledger
from deid.run.runner import deidentify

REPO = Path(__file__).resolve().parents[3]
NOTES = REPO / "appliance" / "data" / "samples" / "notes"
CANARY_NOTE = (
    "Patient Qortimer Zyxwquist (MRN MR-0048291) was seen on 03/14/2024. "
    "He lives at 77 Canarywood Lane, phone 617-555-0199.\n"
)
CANARIES = ("Qortimer", "Zyxwquist", "MR-0048291", "Canarywood", "617-555-0199")


@pytest.fixture(scope="module")
def deid_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    inputs = root / "in"
    inputs.mkdir()
    for name in ("nursing-note.txt", "discharge-summary.txt", "clinic-notes.jsonl"):
        shutil.copy(NOTES / name, inputs / name)
    (inputs / "canary-note.txt").write_text(CANARY_NOTE)
    (inputs / "quiet-note.txt").write_text("Vital signs stable overnight. Tolerating diet. Continue current plan.\n")
    home = root / "home"
    deidentify(
        [inputs],
        root / "out",
        config=DeidConfig(),
        keystore=Keystore.open(home / "keystore"),
        ledger_path=home / "ledger" / "deid.jsonl",
        ledger_config=LedgerConfig(),
    )
    return {"root": root, "home": home, "out": root / "out", "ledger": home / "ledger" / "deid.jsonl"}


def test_ledger_of_a_real_run_verifies_and_holds_no_canary(deid_run: dict[str, Path]) -> None:
    keys = Keystore.open(deid_run["home"] / "keystore").public_keys()
    result = verify_ledger(deid_run["ledger"], keys)
    assert result.ok, result.problem
    text = deid_run["ledger"].read_text()
    for canary in CANARIES:
        assert canary not in text


def test_report_on_a_real_run_quotes_only_deidentified_text(deid_run: dict[str, Path]) -> None:
    keys = Keystore.open(deid_run["home"] / "keystore").public_keys()
    verification = verify_ledger(deid_run["ledger"], keys)
    report = build_report(deid_run["ledger"], verification, deidentified_dir=deid_run["out"], sample_size=100, seed=0)
    spot = {doc["source"]: doc for doc in report["spot_check"]["documents"]}
    assert spot["canary-note.txt"]["status"] == "verified de-identified output"
    assert spot["canary-note.txt"]["excerpt"] == (deid_run["out"] / "canary-note.txt").read_text()
    assert "quiet-note.txt" in {row["source"] for row in report["flagged_no_detections"]}
    assert report["by_source"]["clinic-notes.jsonl"]["documents"] > 1
    found = {row["letter"]: row["found"] for row in report["hipaa_coverage"]}
    assert found["A"] > 0 and found["C"] > 0 and found["D"] > 0
    for text in (render_html(report), json.dumps(report)):
        for canary in CANARIES:
            assert canary not in text


def test_cli_output_holds_no_canary(deid_run: dict[str, Path]) -> None:
    environment = {**os.environ, "APPLIANCE_HOME": str(deid_run["home"])}
    environment.pop("APPLIANCE_CONFIG", None)
    report_dir = deid_run["root"] / "report"
    outputs = []
    for args in (
        ["audit", "verify"],
        ["audit", "report", "--out", str(report_dir), "--deidentified-dir", str(deid_run["out"]), "--seed", "1"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            capture_output=True, text=True, env=environment, cwd=REPO, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    outputs += [(report_dir / "report.html").read_text(), (report_dir / "report.json").read_text()]
    for text in outputs:
        for canary in CANARIES:
            assert canary not in text
