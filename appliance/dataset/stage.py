"""The ``dataset`` pipeline stage: de-identified corpus + Q&A files -> train/validation JSONL.

Outputs (in ``<workdir>/dataset/``): ``train.jsonl``, ``validation.jsonl`` and
``dataset.json``, the dataset manifest an auditor uses to tie a model to its sources: every
source file with its hash, the recipe settings, counts, the hash of every example and the
head of the de-identification ledger.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from appliance.config import ApplianceSettings
from appliance.dataset import gate
from appliance.dataset.config import DatasetConfig
from appliance.dataset.contamination import NGRAM_WORDS, ContaminationIndex
from appliance.dataset.dedupe import duplicate_indices
from appliance.dataset.qa import read_qa_file
from appliance.dataset.recipes import (
    Example,
    dialogue_examples,
    max_chars,
    mix,
    pretrain_examples,
    record_instruction_examples,
)
from appliance.dataset.sources import Corpus, read_corpus
from appliance.dataset.split import split_by_group
from appliance.evaluate.catalog import EvalText, evaluation_texts
from appliance.pipeline.stage import StageContext, StageResult, run_stage
from deid.errors import InputError
from deid.fileio import atomic_write_text, sha256_file
from deid.ledger.verify import ledger_head

STAGE_NAME = "dataset"
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
MANIFEST_FILE = "dataset.json"


def replay_path() -> Path:
    return Path(str(resources.files("appliance.dataset") / "replay.jsonl"))


def build_dataset_stage(
    settings: ApplianceSettings, *, deid_dir: Path | None, qa_files: list[Path], workdir: Path, force: bool = False
) -> StageResult:
    """Build the training set; skipped when sources and settings are unchanged."""
    inputs: dict[str, Path] = {}
    if deid_dir is not None:
        inputs["deid"] = deid_dir
    for index, path in enumerate(qa_files):
        inputs[f"qa{index}"] = path
    if not inputs:
        raise InputError("nothing to build from: give a de-identified corpus and/or Q&A files")
    held_out = evaluation_texts(settings.eval)
    stage_settings = {
        "dataset": settings.dataset.model_dump(mode="json"),
        "deid_score_threshold": settings.deid.score_threshold,
        # A new or changed evaluation file changes what must be kept out, so the set is rebuilt.
        "evaluation_items_sha256": _evaluation_digest(held_out),
    }
    return run_stage(
        workdir,
        STAGE_NAME,
        settings=stage_settings,
        inputs=inputs,
        build=lambda ctx: _build(ctx, settings, deid_dir, qa_files, held_out),
        force=force,
    )


def _evaluation_digest(texts: list[EvalText]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(json.dumps([text.benchmark, text.question, *text.passages]).encode())
    return digest.hexdigest()


def _source_of(example: Example) -> str:
    """The recipe, and for Q&A the file it came from: where contamination has to be fixed."""
    if example.recipe == "qa" and example.group.count(":") >= 2:
        return f"qa:{example.group.split(':', 2)[1]}"
    return example.recipe


def decontaminate(
    pools: dict[str, list[Example]], index: ContaminationIndex
) -> tuple[dict[str, list[Example]], dict[str, Any]]:
    """Drop every example that overlaps an evaluation item; count the drops per source and benchmark."""
    by_source: Counter[str] = Counter()
    by_benchmark: Counter[str] = Counter()
    clean: dict[str, list[Example]] = {}
    for name, pool in pools.items():
        clean[name] = []
        for example in pool:
            questions = [m["content"] for m in example.messages or [] if m.get("role") == "user"]
            found = index.match(questions, example.content())
            if found is None:
                clean[name].append(example)
            else:
                by_source[_source_of(example)] += 1
                by_benchmark[found] += 1
    details = {
        "dropped": sum(by_source.values()),
        "by_source": dict(sorted(by_source.items())),
        "by_benchmark": dict(sorted(by_benchmark.items())),
        "evaluation_items": dict(sorted(index.items.items())),
        "rule": f"question match or a shared {NGRAM_WORDS}-word run",
    }
    return clean, details


def _build(
    ctx: StageContext,
    settings: ApplianceSettings,
    deid_dir: Path | None,
    qa_files: list[Path],
    held_out: list[EvalText],
) -> dict[str, Any]:
    config = settings.dataset
    rng = random.Random(config.seed)
    corpus = read_corpus(deid_dir) if deid_dir is not None else Corpus()
    pools: dict[str, list[Example]] = {
        "pretrain": pretrain_examples(corpus, config),
        "record_instructions": record_instruction_examples(corpus, config),
        "qa": [],
        "replay": dialogue_examples(read_qa_file(replay_path()), "replay"),
    }
    for path in qa_files:
        pools["qa"].extend(dialogue_examples(read_qa_file(path), "qa"))
    if config.max_qa_examples is not None and len(pools["qa"]) > config.max_qa_examples:
        pools["qa"] = rng.sample(pools["qa"], config.max_qa_examples)
    available = {name: len(pool) for name, pool in pools.items()}

    pools, contamination = decontaminate(pools, ContaminationIndex.build(held_out))
    filtered, dropped = _filter(pools, config)
    chosen, taken = mix(filtered, config.recipes, rng)
    if not chosen:
        raise InputError("the dataset is empty: no example survived the recipes and filters")
    train, validation = split_by_group(chosen, config.validation_fraction, config.seed)

    gate_details: dict[str, Any] = {"enabled": config.phi_gate}
    if config.phi_gate:
        scanned = [e for e in chosen if e.recipe in config.phi_gate_recipes]
        registry = gate.load_surrogates(deid_dir) if deid_dir is not None else None
        from deid.detection.engine import PhiDetector

        report = gate.scan(scanned, PhiDetector(settings.deid), registry)
        gate_details.update(report.details(), threshold_per_1k_tokens=config.max_residual_phi_per_1k_tokens)
        gate.enforce(report, config.max_residual_phi_per_1k_tokens)

    _write_jsonl(ctx.output_dir / TRAIN_FILE, train)
    _write_jsonl(ctx.output_dir / VALIDATION_FILE, validation)
    counts = {
        "available": available,
        "dropped": dropped,
        "taken": taken,
        "train": len(train),
        "validation": len(validation),
        "train_groups": len({e.group for e in train}),
        "validation_groups": len({e.group for e in validation}),
    }
    manifest = {
        "sources": _sources(corpus, deid_dir, qa_files),
        "recipe_settings": config.model_dump(mode="json"),
        "counts": counts,
        "phi_gate": gate_details,
        "contamination": contamination,
        "deid_ledger": str(settings.deid_ledger),
        "deid_ledger_head": recorded_ledger_head(settings.deid_ledger),
        "examples": {
            "train": [e.sha256() for e in train],
            "validation": [e.sha256() for e in validation],
        },
    }
    atomic_write_text(ctx.output_dir / MANIFEST_FILE, json.dumps(manifest, indent=2))
    return {
        "counts": counts,
        "phi_gate": gate_details,
        "contamination": contamination,
        "deid_ledger_head": manifest["deid_ledger_head"],
    }


def _filter(pools: dict[str, list[Example]], config: DatasetConfig) -> tuple[dict[str, list[Example]], dict[str, int]]:
    """Length filter, then exact and near-duplicate removal across all recipes at once."""
    limit = max_chars(config)
    order = [(name, e) for name, pool in pools.items() for e in pool]
    too_short = {i for i, (_, e) in enumerate(order) if len(e.content().strip()) < config.min_chars}
    too_long = {i for i, (_, e) in enumerate(order) if e.kind == "chat" and len(e.content()) > limit}
    keep = [i for i in range(len(order)) if i not in too_short and i not in too_long]
    exact, near = duplicate_indices(
        [order[i][1].content() for i in keep],
        threshold=config.near_duplicate_threshold,
        width=config.shingle_words,
        permutations=config.minhash_permutations,
        seed=config.seed,
    )
    survivors = [keep[j] for j in range(len(keep)) if j not in exact and j not in near]
    result: dict[str, list[Example]] = {name: [] for name in pools}
    for i in survivors:
        name, example = order[i]
        result[name].append(example)
    dropped = {"too_short": len(too_short), "too_long": len(too_long), "exact_duplicates": len(exact),
               "near_duplicates": len(near)}
    return result, dropped


def _write_jsonl(path: Path, examples: list[Example]) -> None:
    atomic_write_text(path, "".join(json.dumps(e.record(), ensure_ascii=False) + "\n" for e in examples))


def _sources(corpus: Corpus, deid_dir: Path | None, qa_files: list[Path]) -> list[dict[str, str]]:
    listed: list[dict[str, str]] = []
    for path in corpus.files:
        relative = path.name if deid_dir is None or deid_dir.is_file() else path.relative_to(deid_dir).as_posix()
        listed.append({"role": "deid_corpus", "path": relative, "sha256": sha256_file(path)})
    for path in qa_files:
        listed.append({"role": "qa", "path": path.name, "sha256": sha256_file(path)})
    listed.append({"role": "replay", "path": "appliance/dataset/replay.jsonl", "sha256": sha256_file(replay_path())})
    return listed


def recorded_ledger_head(ledger: Path) -> str | None:
    """The de-identification ledger's head hash, the model's link into the audit chain (None: no ledger)."""
    return ledger_head(ledger) if ledger.is_file() else None
