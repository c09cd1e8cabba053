"""``appliance demo``: the whole flow on the embedded model and the shipped sample records.

It is the same code path hospital IT runs stage by stage; the demo only chooses small, quick
settings (a few training steps, a benchmark subset) and the shipped inputs. Every stage goes
through :func:`appliance.pipeline.stage.run_stage`, so a second run skips what is unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from appliance.config import ApplianceSettings
from appliance.evaluate.stage import BASE_MODEL_NAME, default_models
from appliance.model_source import resolve_base_model
from appliance.pipeline.stage import StageContext, StageResult, run_stage
from appliance.train.config import Method
from deid.egress import installed_guard
from deid.errors import WorkdirError
from deid.fileio import atomic_write_text

SUMMARY_FILE = "demo-summary.json"
# Large enough that a 95% interval is about +-0.1 and a collapse onto one answer shows; about a
# minute per model for the embedded model on 2 cores (the report states the time it took).
DEMO_PUBMEDQA_QUESTIONS = 100
DEMO_MMLU_QUESTIONS = 102  # 17 per medical subject
DEMO_MEDQUAD_ANSWERS = 30
DEMO_TRAIN_STEPS = 8


def samples_dir() -> Path:
    return Path(str(resources.files("appliance") / "data" / "samples"))


def medquad_sample() -> Path:
    return Path(str(resources.files("appliance") / "data" / "medquad-sample.jsonl"))


def _quick(section: BaseModel, values: dict[str, Any]) -> Any:
    """``section`` with ``values`` applied to the fields the operator did not set."""
    return section.model_copy(update={k: v for k, v in values.items() if k not in section.model_fields_set})


def demo_settings(settings: ApplianceSettings) -> ApplianceSettings:
    """Quick settings for a first look; anything the operator configured explicitly still wins."""
    return settings.model_copy(
        update={
            "train": _quick(settings.train, {"max_steps": DEMO_TRAIN_STEPS, "recipe": [Method.cpt, Method.sft]}),
            "eval": _quick(
                settings.eval,
                {
                    "pubmedqa_limit": DEMO_PUBMEDQA_QUESTIONS, "few_shot": 0, "mmlu_limit": DEMO_MMLU_QUESTIONS,
                    "medquad_limit": DEMO_MEDQUAD_ANSWERS,
                },
            ),
        }
    )


def sample_canaries(records: Path) -> list[str]:
    """Full names of the sample patients: real-looking PHI planted before de-identification.

    The memorization check asks the fine-tuned model to complete them from their first part;
    the de-identified training set must not have taught it any of them.
    """
    canaries: list[str] = []
    patients = records / "fhir" / "Patient.000.ndjson"
    if patients.is_file():
        for line in patients.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            for name in json.loads(line).get("name", []):
                full = " ".join([*name.get("given", []), name.get("family", "")]).strip()
                if full:
                    canaries.append(full)
    return sorted(set(canaries))


@dataclass
class StepReport:
    name: str
    seconds: float
    skipped: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoOutcome:
    workdir: Path
    steps: list[StepReport]
    served_model: Path
    egress_attempts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "served_model": str(self.served_model),
            "egress_attempts": self.egress_attempts,
            "steps": [step.__dict__ for step in self.steps],
        }


Announce = Callable[[str], None]


class DemoRun:
    """Runs the stages in order, announcing each, and records what happened."""

    def __init__(self, settings: ApplianceSettings, workdir: Path, announce: Announce) -> None:
        self.settings = demo_settings(settings)
        self.workdir = workdir
        self.announce = announce
        self.steps: list[StepReport] = []
        self.total = 5

    def _step(self, name: str, action: Callable[[], StageResult]) -> StageResult:
        number = len(self.steps) + 1
        self.announce(f"[{number}/{self.total}] {name} ...")
        clock = time.monotonic()
        result = action()
        seconds = round(time.monotonic() - clock, 1)
        verdict = "unchanged, skipped" if result.skipped else f"done in {seconds}s"
        self.announce(f"[{number}/{self.total}] {name}: {verdict} -> {result.directory}")
        self.steps.append(StepReport(name, seconds, result.skipped, _public_details(result)))
        return result

    def _detail(self, message: str) -> None:
        self.announce(f"      {message}")

    def deidentify(self, records: Path) -> StageResult:
        from deid.keystore import Keystore
        from deid.run.runner import deidentify

        settings = self.settings

        def build(ctx: StageContext) -> dict[str, Any]:
            keystore = Keystore.open(settings.keystore_dir, _passphrase(settings))
            summary = deidentify(
                [records],
                ctx.output_dir / "records",
                config=settings.deid,
                keystore=keystore,
                ledger_path=settings.deid_ledger,
                ledger_config=settings.ledger,
                workers=settings.deid.workers,
            )
            details = summary.as_dict()
            details.pop("out_dir", None)  # the staging path; the stage directory replaces it
            return details

        return self._step(
            f"De-identify sample records (audit ledger: {settings.deid_ledger})",
            lambda: run_stage(self.workdir, "deid", settings=settings.deid, inputs={"records": records}, build=build),
        )

    def dataset(self, deid_records: Path) -> StageResult:
        from appliance.dataset.stage import build_dataset_stage

        return self._step(
            "Build the training set (PHI re-scan gate)",
            lambda: build_dataset_stage(
                self.settings, deid_dir=deid_records, qa_files=[medquad_sample()], workdir=self.workdir
            ),
        )

    def train(self, dataset_dir: Path, base_model: Path) -> StageResult:
        from appliance.train.stage import run_recipe, train_stage

        total = self.settings.train.max_steps
        recipe = [str(method) for method in self.settings.train.recipe]

        def progress(row: dict[str, Any]) -> None:
            if row.get("kind") == "train":
                self.announce(
                    f"      step {row['step']}/{total} loss {row['loss']:.3f} ({row.get('tokens_per_s')} tokens/s)"
                )
            elif row.get("kind") == "eval":
                self.announce(f"      validation loss {row.get('val_loss')}")

        # the survey's recipe: continued pretraining on the notes, then instruction tuning from that adapter
        return self._step(
            f"LoRA fine-tune ({' -> '.join(recipe) or 'one stage'}, {total} steps each)",
            lambda: run_recipe(
                self.settings, dataset_dir=dataset_dir, base_model=base_model, workdir=self.workdir, progress=progress
            )[-1] if recipe else train_stage(
                self.settings, dataset_dir=dataset_dir, base_model=base_model, workdir=self.workdir, progress=progress
            ),
        )

    def export(self, base_model: Path, adapter_dir: Path, heldout: Path | None) -> StageResult:
        from appliance.export.stage import export_stage

        return self._step(
            f"Merge, convert to GGUF, quantize ({', '.join(self.settings.export.quantizations)}), parity gate",
            lambda: export_stage(
                self.settings, base_model=base_model, adapter_dir=adapter_dir, workdir=self.workdir,
                heldout_texts=heldout, progress=self._detail,
            ),
        )

    def evaluate(self, models: dict[str, Path], heldout: Path | None, canaries: list[str]) -> StageResult:
        from appliance.evaluate.stage import evaluate_stage

        return self._step(
            "Evaluate base against fine-tuned (MMLU-medical, PubMedQA, MedQuAD, perplexity, memorization)",
            lambda: evaluate_stage(
                self.settings, models=models, workdir=self.workdir, heldout_texts=heldout, canaries=canaries,
                progress=self._detail,
            ),
        )


def _passphrase(settings: ApplianceSettings) -> str | None:
    secret = settings.keystore.passphrase
    return secret.get_secret_value() if secret is not None else None


def _public_details(result: StageResult) -> dict[str, Any]:
    """Only numbers from a stage's details go into the demo summary: never anything textual."""
    return {key: value for key, value in result.manifest.details.items() if isinstance(value, (int, float))}


def index_sample_knowledge(settings: ApplianceSettings, announce: Announce) -> None:
    """Load the MedQuAD sample into the knowledge base so consultations come with citations.

    Adding is idempotent (documents are keyed by content hash), so a second demo adds nothing.
    """
    from appliance.kb.base import KnowledgeBase

    announce("Indexing the approved knowledge (MedQuAD sample) for grounded answers ...")
    knowledge = KnowledgeBase.open(settings.kb_dir, settings.kb, create=True)
    if knowledge is None:
        raise WorkdirError(f"cannot create the knowledge base in {settings.kb_dir}")
    try:
        report = knowledge.add([medquad_sample()])
    finally:
        knowledge.close()
    announce(f"knowledge base: {report.added} added, {report.unchanged} unchanged, {report.chunks} chunks")


def run_demo(settings: ApplianceSettings, workdir: Path, announce: Announce) -> DemoOutcome:
    """Run de-identification through evaluation; the caller decides whether to serve after."""
    run = DemoRun(settings, workdir, announce)
    records = samples_dir()
    base_model = resolve_base_model(settings.models.base)

    deid = run.deidentify(records)
    dataset = run.dataset(deid.path("records"))
    heldout = dataset.path("validation.jsonl")
    heldout_texts = heldout if heldout.is_file() else None
    trained = run.train(dataset.directory, base_model)
    run.export(base_model, trained.path("adapter"), heldout_texts)

    # The export's parity.json names the quants its gate accepted; the F32 reference is left out
    # of the demo's evaluation because the parity gate has already compared it with transformers.
    models = default_models(workdir, base_model)
    models.pop("fine-tuned")
    run.evaluate(models, heldout_texts, sample_canaries(records))

    quants = [path for name, path in models.items() if name != BASE_MODEL_NAME]
    served = quants[-1] if quants else base_model
    guard = installed_guard()
    outcome = DemoOutcome(workdir, run.steps, served, guard.attempts if guard else 0)
    atomic_write_text(workdir / SUMMARY_FILE, json.dumps(outcome.as_dict(), indent=2))
    return outcome
