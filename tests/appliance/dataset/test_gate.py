"""The PHI gate against real ``deid run`` output: deid's own fakes pass, PHI it did not write is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.dataset import gate
from appliance.dataset.config import DatasetConfig
from appliance.dataset.recipes import Example, pretrain_examples, record_instruction_examples
from appliance.dataset.sources import read_corpus
from appliance.dataset.stage import build_dataset_stage
from deid.config import AnonymizationMode, DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.spans import DetectedSpan
from deid.errors import GateError
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.run.runner import deidentify
from deid.surrogate_registry import digest

SAMPLES = Path(__file__).resolve().parents[3] / "appliance" / "data" / "samples"
THRESHOLD = DatasetConfig().max_residual_phi_per_1k_tokens
KEYSTORES = 3
# A name and a date no keystore maps anything to (checked below): what a missed real patient looks like.
INJECTED = "Bartholomew Quackenbush was admitted on 07/19/1962 for observation."


@pytest.fixture(scope="module")
def detector() -> PhiDetector:
    return PhiDetector(DeidConfig())


@pytest.fixture(scope="module")
def deid_runs(tmp_path_factory: pytest.TempPathFactory, detector: PhiDetector) -> list[Path]:
    """The shipped samples de-identified under several fresh keystores: different fakes each time."""
    outputs = []
    for number in range(KEYSTORES):
        root = tmp_path_factory.mktemp(f"key{number}")
        deidentify([SAMPLES], root / "out", config=DeidConfig(), keystore=Keystore.open(root / "keystore"),
                   ledger_path=root / "ledger.jsonl", ledger_config=LedgerConfig(), detector=detector)
        outputs.append(root / "out")
    return outputs


def record_examples(folder: Path) -> list[Example]:
    corpus = read_corpus(folder)
    return pretrain_examples(corpus, DatasetConfig()) + record_instruction_examples(corpus, DatasetConfig())


@pytest.fixture(scope="module")
def reports(deid_runs: list[Path], detector: PhiDetector) -> list[gate.GateReport]:
    return [gate.scan(record_examples(out), detector, gate.load_surrogates(out)) for out in deid_runs]


@pytest.mark.parametrize("number", range(KEYSTORES))
def test_deid_output_passes_under_any_keystore(deid_runs: list[Path], reports: list[gate.GateReport], number: int) -> None:
    registry = gate.load_surrogates(deid_runs[number])
    assert registry, "deid run left no surrogate registry"
    assert gate.load_surrogates(deid_runs[number] / "notes") == registry  # a sub-folder of the output
    assert gate.load_surrogates(deid_runs[number] / "notes" / "clinic-notes.jsonl") == registry
    report = reports[number]
    assert report.registry and report.surrogates >= 50  # the samples are full of fakes the detector finds again
    assert report.per_1k_tokens <= THRESHOLD, report.details()
    gate.enforce(report, THRESHOLD)
    # Without the registry every one of those detections would count (see the redact-mode test).
    assert 1000 * report.detected / report.words > THRESHOLD


def test_keystores_really_gave_different_fakes(deid_runs: list[Path]) -> None:
    registries = [set(gate.load_surrogates(out) or ()) for out in deid_runs]
    assert all(registries)
    assert len(set.intersection(*registries)) < min(len(r) for r in registries) / 2


def test_raw_samples_are_refused_with_counts_only(deid_runs: list[Path], detector: PhiDetector) -> None:
    report = gate.scan(record_examples(SAMPLES), detector, gate.load_surrogates(deid_runs[0]))
    assert report.spans_by_type.get("DATE", 0) >= 20
    assert sum(report.surrogates_by_type.values()) == report.surrogates
    # A real value can equal a fake deid wrote for someone else (a real "Martha" and a fake "Martha"):
    # rare for names. Dates collide more: the samples' dates lie within a few years of each other,
    # so one patient's shifted date is often another's real one (up to 11% of all spans under one
    # keystore of 140 tried). Either way the coincidences are never most of what the gate sees.
    other = report.surrogates - report.surrogates_by_type.get("DATE", 0)
    assert other <= 0.05 * report.detected, report.surrogates_by_type
    assert report.surrogates <= 0.25 * report.detected, report.surrogates_by_type
    with pytest.raises(GateError) as refused:
        gate.enforce(report, THRESHOLD)
    message = str(refused.value)
    assert "DATE" in message and "PATIENT" in message
    assert "WHITAKER" not in message.upper() and "123-45-6789" not in message


def test_a_real_name_and_date_injected_after_deid_are_residual(
    deid_runs: list[Path], reports: list[gate.GateReport], detector: PhiDetector, tmp_path: Path
) -> None:
    registry = gate.load_surrogates(deid_runs[0])
    assert registry is not None
    assert not {digest(word) for word in ("Bartholomew", "Quackenbush", "07/19/1962")} & registry
    tampered = tmp_path / "out"
    shutil.copytree(deid_runs[0], tampered)
    notes = tampered / "notes" / "clinic-notes.jsonl"
    records = [json.loads(line) for line in notes.read_text().splitlines()]
    for record in records:
        record["text"] = f"{INJECTED}\n{record['text']}\n{INJECTED} {INJECTED}"
    notes.write_text("".join(json.dumps(r) + "\n" for r in records))
    after = gate.scan(record_examples(tampered), detector, gate.load_surrogates(tampered))
    before = reports[0].spans_by_type
    assert after.spans_by_type.get("PATIENT", 0) >= before.get("PATIENT", 0) + 3 * len(records)
    assert after.spans_by_type.get("DATE", 0) >= before.get("DATE", 0) + 3 * len(records)
    with pytest.raises(GateError):
        gate.enforce(after, THRESHOLD)


def test_fakes_are_tiled_by_registered_pieces_and_connectors() -> None:
    text = "Seen by Dr. Jones RN on March 2, 2021; Dr. Smith and Jones Smith of Jones Hospital. Dr. left."
    registry = frozenset(d for d in (digest("Jones"), digest("March 2, 2021"), digest("Jones Hospital")) if d)
    tokens = [m.span() for m in gate._TOKEN.finditer(text)]

    def accounted(piece: str, occurrence: int = 0) -> bool:
        start = -1
        for _ in range(occurrence + 1):
            start = text.index(piece, start + 1)
        return gate.accounted_for(text, tokens, DetectedSpan(start, start + len(piece), "X", 0.9), registry)

    assert accounted("Dr. Jones RN")  # a registered fake inside titles
    assert accounted("March 2")  # the detector split a registered date
    assert accounted("2021")
    assert accounted("Jones Hospital")
    assert accounted("of Jones Hospital")
    assert not accounted("Dr. Smith")  # an unregistered (real) name, whatever surrounds it
    assert not accounted("Jones Smith")  # half fake, half real
    assert not accounted("Dr.", 2)  # titles alone are no fake


def test_redaction_tags_are_not_detected(detector: PhiDetector) -> None:
    text = "[NAME] was seen on [DATE] at [HOSPITAL], MRN [MRN], phone [PHONE], lives in [LOCATION]; aged [AGE]."
    assert detector.detect(text) == []


def test_redact_mode_output_passes_on_tags_alone(tmp_path: Path, detector: PhiDetector) -> None:
    """Redact mode writes tags, which the detector does not flag: no registry allowance needed."""
    notes = tmp_path / "in"
    notes.mkdir()
    shutil.copy(SAMPLES / "notes" / "clinic-notes.jsonl", notes / "notes.jsonl")
    deidentify([notes], tmp_path / "out", config=DeidConfig(mode=AnonymizationMode.redact),
               keystore=Keystore.open(tmp_path / "keystore"), ledger_path=tmp_path / "ledger.jsonl",
               ledger_config=LedgerConfig(), detector=detector)
    examples = record_examples(tmp_path / "out")
    report = gate.scan(examples, detector, None)
    assert report.words > 50 and report.surrogates == 0
    assert report.per_1k_tokens <= THRESHOLD, report.details()


def test_stage_reads_the_registry_of_the_corpus_it_builds_from(
    deid_runs: list[Path], appliance_home: Path, tmp_path: Path
) -> None:
    settings = load_settings(dataset={"recipes": {"replay": 0.0}})
    result = build_dataset_stage(settings, deid_dir=deid_runs[1], qa_files=[], workdir=tmp_path / "work")
    details = result.manifest.details["phi_gate"]
    assert details["surrogate_registry"] and details["surrogate_spans"] >= 20
    assert details["residual_per_1k_tokens"] <= THRESHOLD
