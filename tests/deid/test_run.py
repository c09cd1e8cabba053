"""Whole-dataset runs: the Synthea slice with planted canaries, CLI, resume after a hard kill."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from appliance.cli import main as cli_main
from deid.config import AnonymizationMode, DeidConfig
from deid.detection.engine import PhiDetector
from deid.errors import RunStateError
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.ledger.verify import verify_ledger
from deid.run.publish import STATE_DIR
from deid.run.runner import RunSummary, deidentify
from deid.surrogate_registry import LOG_FILE, REGISTRY_FILE, digest, load_registry
from tests.support.canaries import surrogates_could_produce

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "appliance" / "data" / "samples"
CANARY_PATIENT = "63ee2253-bdd5-da55-2ad2-b4984d0ad700"
CANARIES = ("Zyxwquist", "Qortimer", "Canarywood", "617-555-0199", "MR-0048291")


def plant_canaries(folder: Path) -> None:
    """Give one Synthea patient unmistakable PHI, in the Patient resource and in every note."""
    patients = [json.loads(line) for line in (folder / "Patient.000.ndjson").read_text().splitlines()]
    for patient in patients:
        if patient["id"] == CANARY_PATIENT:
            patient["name"] = [{"use": "official", "family": "Zyxwquist", "given": ["Qortimer"]}]
            patient["telecom"] = [{"system": "phone", "value": "617-555-0199"}]
            patient["identifier"].append({"system": "http://hospital.example.org", "value": "MR-0048291"})
            patient["address"][0]["line"] = ["77 Canarywood Lane"]
    (folder / "Patient.000.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    docs = []
    for line in (folder / "DocumentReference.000.ndjson").read_text().splitlines():
        doc = json.loads(line)
        if doc["subject"]["reference"] == f"Patient/{CANARY_PATIENT}":
            note = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
            note = note.replace("Denis399", "Qortimer Zyxwquist")
            note += "\nLives at 77 Canarywood Lane; phone 617-555-0199. MRN MR-0048291. Seen by Mr. Zyxwquist's GP.\n"
            doc["content"][0]["attachment"]["data"] = base64.b64encode(note.encode()).decode()
        docs.append(doc)
    (folder / "DocumentReference.000.ndjson").write_text("".join(json.dumps(d) + "\n" for d in docs))


def all_output_text(folder: Path) -> str:
    """Every output byte as text, with base64 note attachments decoded."""
    chunks = []
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text()
            chunks.append(text)
            chunks.extend(base64.b64decode(m).decode("utf-8", "replace") for m in re.findall(r'"data":\s*"([A-Za-z0-9+/=]+)"', text))
    return "\n".join(chunks)


@pytest.fixture(scope="module")
def detector() -> PhiDetector:
    return PhiDetector(DeidConfig())


def run(inputs: list[Path], out: Path, home: Path, detector: PhiDetector) -> RunSummary:
    return deidentify(
        inputs, out, config=DeidConfig(), keystore=Keystore.open(home / "keystore"),
        ledger_path=home / "ledger.jsonl", ledger_config=LedgerConfig(), detector=detector,
    )


def resources(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def synthea_run(tmp_path_factory: pytest.TempPathFactory, detector: PhiDetector) -> tuple[Path, Path, Path, RunSummary]:
    root = tmp_path_factory.mktemp("synthea")
    source = root / "in"
    shutil.copytree(SAMPLES / "fhir", source)
    plant_canaries(source)
    summary = run([source], root / "out", root, detector)
    return source, root / "out", root, summary


def test_synthea_round_trip_leaks_no_canary(synthea_run: tuple[Path, Path, Path, RunSummary]) -> None:
    source, out, home, summary = synthea_run
    assert summary.malformed == 0 and [p.position for p in summary.skipped] == ["LICENSE"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in source.iterdir() if p.suffix == ".ndjson"
    )
    assert summary.documents == sum(len(resources(p)) for p in source.glob("*.ndjson"))
    text = all_output_text(out) + (home / "ledger.jsonl").read_text()
    for canary in CANARIES:
        assert canary.lower() not in text.lower(), canary
    result = verify_ledger(home / "ledger.jsonl", Keystore.open(home / "keystore").public_keys())
    assert result.ok and result.signatures_checked
    entries = [json.loads(line)["payload"] for line in (home / "ledger.jsonl").read_text().splitlines()]
    documents = [e for e in entries if "document_id" in e and "input_hmac_sha256" in e]
    assert len(documents) == summary.documents == len({d["document_id"] for d in documents})


def test_surrogate_registry_holds_fakes_but_no_original(synthea_run: tuple[Path, Path, Path, RunSummary]) -> None:
    source, out, _, summary = synthea_run
    text = (out / STATE_DIR / REGISTRY_FILE).read_text()
    lines = text.splitlines()
    assert lines == sorted(set(lines)) and all(re.fullmatch(r"[0-9a-f]{64}", line) for line in lines)
    registry = set(lines)
    assert len(registry) == summary.surrogates_registered > 100
    canary = next(r for r in resources(source / "Patient.000.ndjson") if r["id"] == CANARY_PATIENT)
    originals = [*CANARIES, "Qortimer Zyxwquist", "77 Canarywood Lane", canary["birthDate"], "Denis399"]
    assert not {digest(value) for value in originals} & registry
    # what took the canary's place in the output is registered, name part by name part
    faked = next(r for r in resources(out / "Patient.000.ndjson") if r["identifier"] and any(
        i.get("value") and digest(i["value"]) in registry for i in r["identifier"]))
    assert faked["name"][0]["family"] and digest(faked["name"][0]["family"]) in registry
    assert digest(faked["birthDate"]) in registry


def test_synthea_references_and_dates_stay_consistent(synthea_run: tuple[Path, Path, Path, RunSummary]) -> None:
    source, out, _, _ = synthea_run
    ids = {path.name.split(".")[0]: {r["id"] for r in resources(path)} for path in out.glob("*.ndjson")}
    npis = {i["value"] for r in resources(out / "Practitioner.000.ndjson") for i in r["identifier"]}
    text = "".join(p.read_text() for p in out.glob("*.ndjson"))
    typed = re.findall(r'"reference":"(Patient|Encounter)/([^"]+)"', text)
    assert typed and all(ref_id in ids[kind] for kind, ref_id in typed)
    conditional = re.findall(r'"reference":"Practitioner\?identifier=[^|]+\|(\d+)"', text)
    assert conditional and set(conditional) <= npis
    assert not ids["Patient"] & {r["id"] for r in resources(source / "Patient.000.ndjson")}
    # every date of a patient moves by that patient's offset; encounter durations are unchanged
    offsets: dict[str, set[int]] = defaultdict(set)
    for before, after in zip(resources(source / "Encounter.000.ndjson"), resources(out / "Encounter.000.ndjson"), strict=True):
        start, end = (datetime.fromisoformat(before["period"][k]) for k in ("start", "end"))
        new_start, new_end = (datetime.fromisoformat(after["period"][k]) for k in ("start", "end"))
        assert new_end - new_start == end - start
        offsets[before["subject"]["reference"]].add((new_start - start).days)
    assert len(offsets) == 3 and all(len(v) == 1 and 0 not in v for v in offsets.values())
    assert len({next(iter(v)) for v in offsets.values()}) > 1


def appliance(*args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The real console entry point, in-process (a subprocess would pay the start-up again)."""
    monkeypatch.setattr(sys, "argv", ["appliance", *args])
    with pytest.raises(SystemExit) as done:
        cli_main.run()
    return int(done.value.code or 0), " ".join(capsys.readouterr().err.split())


def test_cli_run_on_sample_notes(
    tmp_path: Path, appliance_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = appliance("deid", "run", str(SAMPLES / "notes"), "--out", str(tmp_path / "out"), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "4 files, 8 documents de-identified, 0 malformed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in (SAMPLES / "notes").iterdir()
    )
    output = all_output_text(tmp_path / "out")
    planted = ("O'Connell", "617-555-0143", "KOWALCZYK", "123-45-6789", "Haldane", "m.oconnell48@example.org")
    assert not any(surrogates_could_produce(word) for word in ("KOWALCZYK", "Haldane"))
    for needle in planted:
        assert needle not in output, needle
    assert (appliance_home / "ledger" / "deid.jsonl").is_file()
    code, err = appliance("deid", "run", str(SAMPLES / "fhir" / "LICENSE"), "--out", str(tmp_path / "o2"), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 3 and "LICENSE: unsupported format" in err and "Traceback" not in err


KILL_SCRIPT = """
import os, sys
from pathlib import Path
import deid.run.runner as runner
from appliance.cli import main as cli_main
from deid.config import AnonymizationMode, DeidConfig
from deid.detection.engine import PhiDetector
from deid.errors import RunStateError
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.ledger.writer import LedgerWriter

runner.CHECKPOINT_UNITS = 5
original = LedgerWriter.append
appended = [0]

def append(self, action, payload):
    seq = original(self, action, payload)
    appended[0] += 1
    if appended[0] == int(sys.argv[2]):
        os._exit(9)  # a hard kill: no clean-up, no final checkpoint
    return seq

LedgerWriter.append = append
home = Path(sys.argv[1])
runner.deidentify([home / "in"], home / "out", config=DeidConfig(), keystore=Keystore.open(home / "keystore"),
                    ledger_path=home / "ledger.jsonl", ledger_config=LedgerConfig())
"""


def test_killed_run_resumes_without_duplicates_or_losses(tmp_path: Path, detector: PhiDetector) -> None:
    source = tmp_path / "in"
    source.mkdir()
    lines = [
        json.dumps({"id": f"n{i}", "patient_id": f"P{i % 4}", "text": f"Seen 03/{i % 28 + 1:02d}/2021 by Dr. Okafor, call 617-555-01{i:02d}."})
        for i in range(40)
    ]
    lines.insert(9, "{not json")
    (source / "notes.jsonl").write_text("\n".join(lines) + "\n")
    (source / "zz-note.txt").write_text("Margaret O'Connell, MRN 00482913, admitted 03/02/2021.\n")
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    killed = subprocess.run([sys.executable, str(script), str(tmp_path), "23"], cwd=REPO, capture_output=True, timeout=300)
    assert killed.returncode == 9, killed.stderr.decode()[-2000:]
    assert not (tmp_path / "out" / "notes.jsonl").exists()  # nothing half-written under the final name
    assert load_registry(tmp_path / "out" / STATE_DIR / LOG_FILE)  # checkpointed fakes were logged

    summary = run([source], tmp_path / "out", tmp_path, detector)
    assert summary.files_resumed == 1 and summary.files == 2
    assert summary.documents == 41 and summary.malformed == 1
    assert [(p.position, p.reason) for p in summary.problems] == [("notes.jsonl:10", "invalid_json")]

    clean_home = tmp_path / "clean"
    clean_home.mkdir()
    shutil.copytree(tmp_path / "keystore", clean_home / "keystore")
    run([source], clean_home / "out", clean_home, detector)
    for name in ("notes.jsonl", "zz-note.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (clean_home / "out" / name).read_bytes()
    records = [json.loads(line) for line in (tmp_path / "out" / "notes.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"n{i}" for i in range(40)]
    # the resumed run's registry holds the fakes of the killed run's records too, and nothing else
    resumed_registry = load_registry(tmp_path / "out" / STATE_DIR / REGISTRY_FILE)
    assert resumed_registry and resumed_registry == load_registry(clean_home / "out" / STATE_DIR / REGISTRY_FILE)

    result = verify_ledger(tmp_path / "ledger.jsonl", Keystore.open(tmp_path / "keystore").public_keys(), allow_unsealed=True)
    assert result.ok
    entries = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    actions = Counter(e["action"] for e in entries)
    assert actions["deid.document"] == 41 and actions["deid.malformed"] == 1 and actions["deid.run"] == 1
    assert len({e["payload"]["document_id"] for e in entries if e["action"] == "deid.document"}) == 41

    again = run([source], tmp_path / "out", tmp_path, detector)  # a finished run is not redone
    assert again.documents == 41
    assert Counter(json.loads(line)["action"] for line in (tmp_path / "ledger.jsonl").read_text().splitlines())["deid.document"] == 41


def test_an_output_folder_refuses_a_run_with_other_settings_or_changed_inputs(tmp_path: Path, detector: PhiDetector) -> None:
    source = tmp_path / "in"
    source.mkdir()
    note = source / "note.txt"
    note.write_text("Seen 03/02/2021 by Dr. Okafor.\n")
    keystore = Keystore.open(tmp_path / "keystore")

    def go(config: DeidConfig) -> RunSummary:
        return deidentify([source], tmp_path / "out", config=config, keystore=keystore, ledger_path=tmp_path / "l.jsonl",
                          ledger_config=LedgerConfig(), detector=detector)

    go(DeidConfig())
    visible = [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert visible == ["note.txt"]  # run state is hidden from corpus readers
    with pytest.raises(RunStateError, match="different de-identification settings"):
        go(DeidConfig(mode=AnonymizationMode.redact))
    note.write_text("Seen 03/02/2021 by Dr. Okafor and Dr. Patel.\n")
    with pytest.raises(RunStateError, match=r"note\.txt: changed"):
        go(DeidConfig())
