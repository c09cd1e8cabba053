"""The auditor's workflow on real components: deid run -> deid sample -> annotate -> deid evaluate -> audit report.

Real presidio and the appliance's recognizers (one detector for the in-process checks), real
ledger and keystore, the CLI in subprocesses as an officer runs it. Fixtures are written here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.evaluation.evaluate import evaluate_gold, ledger_payload, metrics
from deid.evaluation.intervals import Rate
from deid.ledger.payload import validate_payload

NOTES = [
    "Pt seen by Dr. Okonkwo on 03/14/2021. Daughter Maria to call 617-555-0143. BP 187/93, afebrile.",
    "Mr. Lindqvist was admitted 02/02/2020. BP 187/93 on arrival, afebrile overnight.",
    "No events overnight. Afebrile. Lungs clear. BP 187/93.",
]
SURVIVES = ("187/93", "afebrile", "overnight")  # clinical text that de-identification keeps


@pytest.fixture(scope="module")
def detector() -> PhiDetector:
    return PhiDetector(DeidConfig())


def cli(home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APPLIANCE_HOME": str(home)}
    environment.pop("APPLIANCE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", *arguments], check=False, capture_output=True, text=True, env=environment, timeout=600
    )


def annotate(sheet: Path, gold: Path) -> int:
    """What a privacy officer does: mark dates, phones and the names after titles and relations."""
    marked = 0
    lines = []
    for line in sheet.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        text = record["text"]
        patterns = (
            (r"\b\d{2}/\d{2}/\d{4}\b", "Date"),
            (r"\b\d{3}-\d{3}-\d{4}\b", "Phone"),
            (r"(?<=Dr\. )[A-Z][a-z]+|(?<=Mr\. )[A-Z][a-z]+|(?<=Daughter )[A-Z][a-z]+", "PTName"),
        )
        for pattern, label in patterns:
            for match in re.finditer(pattern, text):
                record["spans"].append({"start": match.start(), "end": match.end(), "label": label, "text": match.group()})
                marked += 1
        lines.append(json.dumps(record))
    gold.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return marked


def test_evaluating_a_gold_file_in_process(tmp_path: Path, detector: PhiDetector) -> None:
    text = NOTES[0]
    start = text.index("617-555-0143")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "x", "text": text, "spans": [{"start": start, "end": start + 12, "label": "Phone"}]}) + "\n")
    report = evaluate_gold(gold, detector)
    evaluation = report.evaluation
    assert evaluation.documents == 1 and not report.malformed
    assert evaluation.by_label()["PHONE"]["token_recall"] == Rate(3, 3)
    assert evaluation.span_recall == Rate(1, 1)
    # the detector also finds the name and date, which this gold did not mark: precision shows it
    assert evaluation.token_precision.hits == 3 and evaluation.token_precision.total > 3
    payload = ledger_payload(report, gold_file_hash="a" * 64, settings_sha256="b" * 64, detector_version="1", rules_version="2")
    validate_payload(payload)
    assert payload["evaluation"] == metrics(evaluation)


def test_sample_annotate_evaluate_report(tmp_path: Path) -> None:
    home, inputs, run, sheet = tmp_path / "home", tmp_path / "in", tmp_path / "run", tmp_path / "sheet"
    inputs.mkdir()
    (inputs / "notes.jsonl").write_text("".join(json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(NOTES)))
    (inputs / "visit.txt").write_text("Seen by Dr. Abernathy on 01/05/2019. BP 187/93, afebrile.\n")
    (inputs / "table.csv").write_text("id,note\n1,Visited by son Carlos on 04/04/2022. BP 187/93\n")
    done = cli(home, "deid", "run", str(inputs), "--out", str(run))
    assert done.returncode == 0, done.stderr

    drawn = cli(home, "deid", "sample", str(run), "--n", "4", "--out", str(sheet), "--seed", "7")
    assert drawn.returncode == 0, drawn.stderr
    assert "4 of 5 documents" in drawn.stdout + drawn.stderr
    manifest = json.loads((sheet / "manifest.json").read_text())
    assert manifest["seed"] == 7 and len(manifest["documents"]) == 4
    again = cli(home, "deid", "sample", str(run), "--n", "4", "--out", str(tmp_path / "again"), "--seed", "7")
    assert again.returncode == 0 and (tmp_path / "again" / "sheet.jsonl").read_bytes() == (sheet / "sheet.jsonl").read_bytes()
    inside = cli(home, "deid", "sample", str(run), "--out", str(run / "sheet"))
    assert inside.returncode != 0 and "outside the run folder" in inside.stderr

    gold = tmp_path / "gold.jsonl"
    assert annotate(sheet / "sheet.jsonl", gold) >= 4
    with gold.open("a") as handle:
        handle.write("{broken line with 187/93\n")
    scored = cli(home, "deid", "evaluate", str(gold), "--out", str(tmp_path / "eval"), "--json")
    assert scored.returncode == 3, scored.stderr  # the malformed line is reported, the rest scored
    assert f"{gold.name}:5: skipped: invalid JSON" in scored.stderr
    figures = json.loads(scored.stdout)
    assert figures["documents"] == 4
    recall = figures["token_recall"]
    assert recall["total"] > 0 and 0 <= recall["low"] <= recall["value"] <= recall["high"] <= 1
    assert set(figures["by_label"]) <= {"DATE", "PHONE", "PT_NAME"}
    written = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert written["token_recall"] == recall and written["malformed_lines"] == [5]
    table = cli(home, "deid", "evaluate", str(gold), "--no-record")
    assert "token recall" in table.stdout and "95% interval" in table.stdout
    sheet_text = (sheet / "sheet.jsonl").read_text()
    for output in (scored.stdout + scored.stderr, table.stdout + table.stderr, drawn.stdout + drawn.stderr):
        for fragment in SURVIVES:
            assert fragment in sheet_text.lower()
            assert fragment not in output.lower(), "evaluation output must carry no record text"

    ledger = home / "ledger" / "deid.jsonl"
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    evaluations = [e for e in entries if e["action"] == "deid.evaluation"]
    assert len(evaluations) == 1, "--no-record wrote nothing"
    assert evaluations[0]["payload"]["malformed_count"] == 1
    assert not any(fragment in json.dumps(evaluations[0]).lower() for fragment in SURVIVES)
    assert cli(home, "audit", "verify", str(ledger)).returncode == 0

    report_dir = tmp_path / "report"
    reported = cli(home, "audit", "report", str(ledger), "--out", str(report_dir))
    assert reported.returncode == 0, reported.stderr
    report = json.loads((report_dir / "report.json").read_text())
    (latest,) = report["evaluations"]
    assert latest["documents"] == 4 and latest["metrics"]["token_recall"] == recall
    page = (report_dir / "report.html").read_text()
    assert "Local accuracy checks" in page and f"{recall['value']:.3f} [{recall['low']:.3f}, {recall['high']:.3f}]" in page
