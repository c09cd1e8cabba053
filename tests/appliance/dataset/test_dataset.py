"""Dataset build: readers, recipes, dedupe, patient split, PHI gate, manifest, CLI."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.dataset.config import DatasetConfig, RecipeMix
from appliance.dataset.dedupe import duplicate_indices
from appliance.dataset.qa import read_qa_file
from appliance.dataset.recipes import (
    SUMMARY_INSTRUCTION,
    TREATED_FOR,
    Example,
    chunk_text,
    clip_words,
    mix,
    record_instruction_examples,
)
from appliance.dataset.sources import read_corpus
from appliance.dataset.split import split_by_group
from appliance.dataset.stage import build_dataset_stage
from deid.errors import GateError, InputError
from deid.fileio import sha256_file
from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.verify import ledger_head, verify_ledger
from deid.ledger.writer import LedgerWriter

REPO = Path(__file__).resolve().parents[3]
MEDQUAD_SAMPLE = REPO / "appliance" / "data" / "medquad-sample.jsonl"

NOTE_A = (
    "# Chief Complaint\n- Cough and fever for three days.\n\n# History of Present Illness\n"
    "The patient reports productive cough, fever and fatigue since the weekend. No chest pain.\n\n"
    "# Assessment and Plan\nCommunity acquired pneumonia. Start amoxicillin 1 g three times daily, "
    "review chest film in six weeks.\n"
)
NOTE_B = (
    "Follow-up visit for type 2 diabetes. Glucose logs reviewed, fasting values between 6 and 8.\n"
    "Assessment: diabetes is improving on metformin.\nPlan: continue metformin, repeat HbA1c in three months.\n"
)


def _fhir_corpus(root: Path, patients: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs, conditions, meds, people = [], [], [], []
    for number in range(patients):
        pid = f"p{number}"
        people.append({"resourceType": "Patient", "id": pid})
        note = NOTE_A if number % 2 else NOTE_B
        note = note.replace("three days", f"{number + 2} days").replace("six weeks", f"{number + 4} weeks")
        docs.append({
            "resourceType": "DocumentReference", "id": f"d{number}", "subject": {"reference": f"Patient/{pid}"},
            "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(note.encode()).decode()}}],
        })
        conditions.append({"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
                           "code": {"text": "Essential hypertension"}})
        meds.append({"resourceType": "MedicationRequest", "subject": {"reference": f"Patient/{pid}"},
                     "medicationCodeableConcept": {"coding": [{"display": "lisinopril 10 MG Oral Tablet"}]}})
    for name, rows in (("Patient", people), ("DocumentReference", docs), ("Condition", conditions),
                       ("MedicationRequest", meds)):
        (root / f"{name}.000.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _settings(**dataset: object):
    return load_settings(dataset={"phi_gate": False, **dataset})


def test_reads_every_corpus_format_with_patient_groups(tmp_path: Path) -> None:
    root = _fhir_corpus(tmp_path / "deid", patients=2)
    (root / "note.txt").write_text("Plain text note about asthma control and inhaler technique.")
    (root / "notes.jsonl").write_text(json.dumps({"patient_id": "q1", "text": "Knee pain after a fall."}) + "\n")
    (root / "enc.csv").write_text("patient_id,note\nq2,Wound healing well; sutures removed.\n")
    corpus = read_corpus(root)
    groups = {d.group for d in corpus.documents}
    assert {"patient:p0", "patient:p1", "patient:q1", "patient:q2", "file:note.txt"} <= groups
    assert any("Assessment and Plan" in d.text for d in corpus.documents)  # base64 note decoded
    assert corpus.facts["patient:p0"].conditions == ["Essential hypertension"]
    assert corpus.facts["patient:p0"].medications == ["lisinopril 10 MG Oral Tablet"]


def test_malformed_corpus_line_is_a_clear_input_error(tmp_path: Path) -> None:
    root = tmp_path / "deid"
    root.mkdir()
    (root / "bad.ndjson").write_text('{"resourceType": "Patient"\n')
    with pytest.raises(InputError, match=r"malformed JSON in .*bad\.ndjson at line 1"):
        read_corpus(root)


def test_chunks_respect_the_context_budget() -> None:
    text = "\n".join(f"Line {i} " + "word " * 40 for i in range(30))
    chunks = chunk_text(text, 300)
    assert all(len(c) <= 300 for c in chunks)
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())  # nothing lost


def test_record_templates(tmp_path: Path) -> None:
    corpus = read_corpus(_fhir_corpus(tmp_path / "deid", patients=2))
    examples = record_instruction_examples(corpus, DatasetConfig())
    treated = [e for e in examples if TREATED_FOR in e.messages[0]["content"]]
    assert len(treated) == 2
    assert "lisinopril" in treated[0].messages[0]["content"]
    assert "Essential hypertension" in treated[0].messages[1]["content"]
    summaries = [e for e in examples if e.messages[0]["content"].startswith(SUMMARY_INSTRUCTION)]
    assert len(summaries) == 2
    for example in summaries:
        prompt, answer = example.messages[0]["content"], example.messages[1]["content"]
        assert "metformin" in answer or "amoxicillin" in answer
        assert answer not in prompt  # the answer is cut out of the note shown


def test_medquad_importer_and_other_layouts(tmp_path: Path) -> None:
    dialogues = read_qa_file(MEDQUAD_SAMPLE)
    assert len(dialogues) == 298
    assert {d.messages[0]["role"] for d in dialogues} == {"user"}
    gz = tmp_path / "qa.jsonl.gz"
    rows = [{"instruction": "Define fever.", "output": "A raised body temperature."},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]},
            {"prompt": "", "response": "dropped: empty prompt"}]
    gz.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    read = read_qa_file(gz)
    assert [d.messages[-1]["content"] for d in read] == ["A raised body temperature.", "Hello."]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "no pair here"}) + "\n")
    with pytest.raises(InputError, match="line 1"):
        read_qa_file(bad)


def test_exact_and_near_duplicates_are_removed() -> None:
    base = " ".join(f"token{i}" for i in range(120))
    near = base.replace("token60", "changed")
    other = " ".join(f"word{i}" for i in range(120))
    texts = [base, base.upper(), near, other]
    exact, near_found = duplicate_indices(texts, threshold=0.8, width=5, permutations=64, seed=0)
    assert exact == {1}
    assert near_found == {2}


def test_mixing_follows_the_ratios() -> None:
    pools = {
        "pretrain": [Example("pretrain", f"g{i}", "text", text=f"t{i}") for i in range(100)],
        "record_instructions": [],
        "qa": [Example("qa", f"q{i}", "text", text=f"q{i}") for i in range(40)],
        "replay": [Example("replay", f"r{i}", "text", text=f"r{i}") for i in range(50)],
    }
    chosen, taken = mix(pools, RecipeMix(pretrain=1.0, qa=1.0, replay=0.25), random.Random(0))
    assert taken == {"pretrain": 40, "record_instructions": 0, "qa": 40, "replay": 20}
    assert len(chosen) == 100
    _, only_pretrain = mix(pools, RecipeMix(pretrain=1.0, qa=0.0, replay=0.0), random.Random(0))
    assert only_pretrain == {"pretrain": 100, "record_instructions": 0, "qa": 0, "replay": 0}


def test_split_keeps_each_patient_on_one_side() -> None:
    examples = [Example("pretrain", f"patient:{i % 17}", "text", text=str(i)) for i in range(200)]
    train, validation = split_by_group(examples, 0.2, seed=3)
    assert validation and train
    assert not {e.group for e in train} & {e.group for e in validation}
    assert len(train) + len(validation) == 200
    assert 20 <= len(validation) <= 40  # close to the fraction, never over it
    lopsided = [Example("pretrain", "big", "text", text=str(i)) for i in range(90)]
    lopsided += [Example("pretrain", f"small{i}", "text", text=f"s{i}") for i in range(10)]
    _, held_out = split_by_group(lopsided, 0.1, seed=0)
    assert held_out and {e.group for e in held_out} != {"big"}


def test_build_stage_writes_split_and_auditable_manifest(tmp_path: Path) -> None:
    deid_dir = _fhir_corpus(tmp_path / "deid", patients=8)
    ledger_home = tmp_path / "home"
    settings = load_settings(home=ledger_home, dataset={"phi_gate": False, "validation_fraction": 0.3})
    store = Keystore.open(settings.keystore_dir)
    with LedgerWriter.open(
        settings.deid_ledger, store.signing_key(), auth=LedgerAuth.from_keystore(store), actor="test", checkpoint_every=1000
    ) as ledger:
        ledger.append("deid.run", {"documents": 2})
    result = build_dataset_stage(settings, deid_dir=deid_dir, qa_files=[MEDQUAD_SAMPLE], workdir=tmp_path / "work")
    train = [json.loads(line) for line in result.path("train.jsonl").read_text().splitlines()]
    validation = [json.loads(line) for line in result.path("validation.jsonl").read_text().splitlines()]
    assert train and validation
    assert not {e["group"] for e in train} & {e["group"] for e in validation}
    assert {e["recipe"] for e in train + validation} == {"pretrain", "record_instructions", "qa", "replay"}
    manifest = json.loads(result.path("dataset.json").read_text())
    assert manifest["examples"]["train"] == [e["sha256"] for e in train]
    recomputed = Example(**{k: train[0][k] for k in ("recipe", "group", "kind", "text", "messages") if k in train[0]})
    assert recomputed.sha256() == train[0]["sha256"]
    by_path = {s["path"]: s["sha256"] for s in manifest["sources"]}
    assert by_path["DocumentReference.000.ndjson"] == sha256_file(deid_dir / "DocumentReference.000.ndjson")
    assert by_path["medquad-sample.jsonl"] == sha256_file(MEDQUAD_SAMPLE)
    assert manifest["deid_ledger_head"] == ledger_head(settings.deid_ledger)
    trusted = Keystore.open(settings.keystore_dir).public_keys()
    verified = verify_ledger(settings.deid_ledger, trusted, expected_head=manifest["deid_ledger_head"])
    assert verified.ok and verified.head_hash == manifest["deid_ledger_head"]
    assert result.manifest.details["deid_ledger_head"] == manifest["deid_ledger_head"]
    assert manifest["recipe_settings"]["validation_fraction"] == 0.3
    # unchanged inputs and settings: the stage is skipped
    again = build_dataset_stage(settings, deid_dir=deid_dir, qa_files=[MEDQUAD_SAMPLE], workdir=tmp_path / "work")
    assert again.skipped


def test_empty_build_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "deid"
    empty.mkdir()
    with pytest.raises(InputError, match="empty"):
        build_dataset_stage(_settings(recipes={"replay": 0.0}), deid_dir=empty, qa_files=[], workdir=tmp_path / "w")


def test_phi_gate_refuses_planted_phi_with_counts_only(tmp_path: Path) -> None:
    root = tmp_path / "deid"
    root.mkdir()
    planted = [
        {"patient_id": f"p{i}", "text": f"Seen 03/1{i}/2021. Mr. John Whitaker{i}, MRN {4471200 + i}, "
         f"call 617-555-01{i:02d}. Stable on lisinopril; follow up in clinic {i + 2} weeks."}
        for i in range(6)
    ]
    (root / "notes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in planted))
    settings = load_settings(dataset={"recipes": {"replay": 0.0}})
    with pytest.raises(GateError) as refused:
        build_dataset_stage(settings, deid_dir=root, qa_files=[], workdir=tmp_path / "work")
    message = str(refused.value)
    assert "PHI gate refused" in message and "PHONE" in message and "MRN" in message
    assert "Whitaker" not in message and "617-555" not in message and "4471200" not in message
    assert not (tmp_path / "work" / "dataset").exists()  # nothing half-built left behind


def test_phi_gate_passes_clean_notes(tmp_path: Path) -> None:
    root = tmp_path / "deid"
    root.mkdir()
    clean = [{"patient_id": f"p{i}", "text": f"Stable on lisinopril, blood pressure controlled. Follow up in {i + 2} "
              "weeks. Continue low salt diet and daily walking. Kidney function normal on the last panel."}
             for i in range(4)]
    (root / "notes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in clean))
    result = build_dataset_stage(load_settings(), deid_dir=root, qa_files=[MEDQUAD_SAMPLE], workdir=tmp_path / "w")
    gate = result.manifest.details["phi_gate"]
    assert gate["enabled"] and gate["examples_scanned"] >= 1
    assert gate["residual_per_1k_tokens"] <= 0.5


def test_cli_dataset_build(tmp_path: Path) -> None:
    deid_dir = _fhir_corpus(tmp_path / "deid", patients=4)
    env = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home"), "APPLIANCE_DATASET__PHI_GATE": "false"}
    env.pop("APPLIANCE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "dataset", "build", "--deid", str(deid_dir), "--qa", str(MEDQUAD_SAMPLE),
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "dataset built" in done.stderr
    assert (tmp_path / "work" / "dataset" / "train.jsonl").is_file()
    missing = subprocess.run(
        [sys.executable, "-m", "appliance", "dataset", "build", "--deid", str(tmp_path / "nope"),
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "nope" in missing.stderr


def test_clipped_text_never_ends_in_half_a_word() -> None:
    assert clip_words("No Known Allergies. Medications: none", 14) == "No Known"
    assert clip_words("No Known Allergies", 18) == "No Known Allergies"
    assert clip_words("Pneumonoultramicroscopic", 10) == "Pneumonoul"  # no blank to cut at: a hard cut
