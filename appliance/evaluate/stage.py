"""The ``evaluate`` stage: every model on the same benchmarks, one report, a memorization gate, a model card.

Stage directory layout: ``report.json``, ``report.html`` (self-contained, inline SVG) and
``model-card.md``. A failed memorization gate still keeps the report for the auditor; the
gate is applied after the stage, from its manifest, so a skipped rerun fails the same way.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import ApplianceSettings
from appliance.dataset.contamination import ContaminationIndex
from appliance.dataset.stage import STAGE_NAME as DATASET_STAGE
from appliance.dataset.stage import TRAIN_FILE, VALIDATION_FILE
from appliance.evaluate import (
    medquad,
    memorization,
    multiple_choice,
    pubmedqa,
    review,
    stats,
)
from appliance.evaluate.catalog import evaluation_texts
from appliance.evaluate.config import EvalConfig
from appliance.evaluate.model_card import render_model_card
from appliance.evaluate.report import render_html
from appliance.export.heldout import read_texts
from appliance.export.runners import ModelRunner, negative_log_likelihood, open_runner
from appliance.export.stage import STAGE_NAME as EXPORT_STAGE
from appliance.pipeline.stage import StageContext, StageResult, finished_stage, run_stage
from deid.errors import GateError, InputError
from deid.fileio import atomic_write_text, sha256_file
from serve.engine.gguf_file import embedded_model_path

STAGE_NAME = "evaluate"
REVIEW_FILE = "review.json"
BASE_MODEL_NAME = "base"
SIGNIFICANCE = 0.05
# Fewer paired items than this cannot show a difference at 5% (McNemar needs 5 discordant pairs).
MIN_PAIRED_ITEMS = 5
# Per-item values are compared at this resolution: below it, transformers and llama.cpp disagree
# only by float rounding, and a bootstrap would call a consistent 1e-6 shift significant.
PAIRED_DECIMALS = 4
Progress = Callable[[str], None]


class Scores:
    """One model's results: flat headline numbers, per-benchmark detail, and per-item values for paired tests."""

    def __init__(self) -> None:
        self.flat: dict[str, Any] = {}
        self.detail: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[float]] = {}
        self.answers: list[dict[str, Any]] = []

    def accuracy(self, key: str, flat_key: str, scored: dict[str, Any], seconds: float) -> None:
        correct = [bool(value) for value in scored.pop("correct")]
        share = sum(correct) / len(correct) if correct else 0.0
        low, high = stats.wilson(sum(correct), len(correct))
        self.flat[flat_key] = round(share, 4)
        self.detail[key] = {
            "metric": "accuracy", "value": round(share, 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
            "questions": len(correct), "seconds": round(seconds, 1), "higher_is_better": True, **scored,
        }
        self.items[key] = [float(value) for value in correct]

    def mean(self, key: str, flat_key: str, values: list[float], seconds: float) -> None:
        value = sum(values) / len(values) if values else 0.0
        low, high = stats.bootstrap_mean(values)
        self.flat[flat_key] = round(value, 4)
        self.detail[key] = {
            "metric": "mean", "value": round(value, 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
            "questions": len(values), "seconds": round(seconds, 1), "higher_is_better": True,
        }
        self.items[key] = list(values)

    def perplexity(self, key: str, flat_key: str, losses: list[float], tokens: list[int], seconds: float) -> None:
        value = medquad.answer_perplexity(losses, tokens)
        low, high = stats.bootstrap_perplexity(losses, tokens)
        self.flat[flat_key] = round(value, 4)
        self.detail[key] = {
            "metric": "perplexity", "value": round(value, 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
            "questions": len(losses), "tokens": sum(tokens), "seconds": round(seconds, 1), "higher_is_better": False,
        }
        # Paired comparisons use each item's mean log-loss per token: lower is better, like perplexity.
        self.items[key] = [loss / max(count, 1) for loss, count in zip(losses, tokens, strict=True)]


def _heldout_losses(runner: ModelRunner, texts: list[str], max_tokens: int) -> tuple[list[float], list[int]]:
    """Per-text log-loss of held-out notes, up to about ``max_tokens`` scored tokens in all."""
    losses: list[float] = []
    counts: list[int] = []
    for text in texts:
        ids = runner.tokenize(text)[: max_tokens - sum(counts) + 1]
        nll, scored = negative_log_likelihood(runner, ids)
        if scored:
            losses.append(nll)
            counts.append(scored)
        if sum(counts) >= max_tokens:
            break
    return losses, counts


def multiple_choice_sets(config: EvalConfig) -> dict[str, list[multiple_choice.MultipleChoiceItem]]:
    """MMLU-medical (stratified by subject) and each hospital file, in the order they are reported."""
    sets: dict[str, list[multiple_choice.MultipleChoiceItem]] = {}
    if config.mmlu_limit != 0:
        sets["mmlu_medical"] = multiple_choice.stratified(multiple_choice.load_mmlu(), config.mmlu_limit)
    loaders = [(path, multiple_choice.load_medqa) for path in config.medqa_files]
    loaders += [(path, multiple_choice.load_medmcqa) for path in config.medmcqa_files]
    for path, load in loaders:
        sets[f"mc_{path.stem}"] = multiple_choice.stratified(load(path), config.medqa_limit)
    return sets


def _evaluate_model(
    name: str,
    path: Path,
    config: EvalConfig,
    heldout: list[str] | None,
    canaries: list[str],
    say: Progress,
) -> tuple[Scores, dict[str, Any] | None]:
    # Inputs are read before the model is loaded, so a bad file fails fast and in the same way for every model.
    questions = pubmedqa.load_test_split(config.pubmedqa_limit, config.pubmedqa_context_chars)
    choice_sets = multiple_choice_sets(config)
    qa_items = (
        medquad.load_medquad(config.medquad_file or medquad.shipped_heldout(), config.medquad_limit)
        if config.medquad_limit != 0 else []
    )
    runner = open_runner(path, context_length=config.context_length, threads=config.threads, name=name)
    scores = Scores()
    try:
        say(f"{name}: PubMedQA zero-shot ({len(questions)} questions)")
        started = time.perf_counter()
        zero = pubmedqa.evaluate(runner, questions, [])
        scores.accuracy("pubmedqa_zero_shot", "pubmedqa_zero_shot", zero, time.perf_counter() - started)
        scores.flat["pubmedqa_questions"] = len(questions)
        if config.few_shot:
            say(f"{name}: PubMedQA {config.few_shot}-shot")
            started = time.perf_counter()
            demos = pubmedqa.load_demonstrations(config.few_shot, config.pubmedqa_context_chars)
            few = pubmedqa.evaluate(runner, questions, demos)
            scores.accuracy("pubmedqa_few_shot", "pubmedqa_few_shot", few, time.perf_counter() - started)
        for key, items in choice_sets.items():
            say(f"{name}: multiple choice {key} ({len(items)} questions)")
            started = time.perf_counter()
            scored = multiple_choice.evaluate(runner, items)
            scores.accuracy(key, f"{key}_accuracy", scored, time.perf_counter() - started)
        if qa_items:
            say(f"{name}: MedQuAD held-out answers ({len(qa_items)})")
            started = time.perf_counter()
            answered = medquad.evaluate(runner, qa_items, config.answer_max_tokens)
            seconds = time.perf_counter() - started
            scores.perplexity(
                "medquad_answer_perplexity", "medquad_answer_perplexity", answered["nll"], answered["tokens"], seconds
            )
            scores.mean("medquad_rouge_l", "medquad_rouge_l", answered["rouge_l"], seconds)
        if heldout:
            say(f"{name}: held-out notes perplexity")
            started = time.perf_counter()
            losses, counts = _heldout_losses(runner, heldout, config.perplexity_max_tokens)
            if losses:
                scores.perplexity("heldout_perplexity", "heldout_perplexity", losses, counts, time.perf_counter() - started)
        if config.review_limit:
            reviewed = medquad.load_medquad(config.medquad_file or medquad.shipped_heldout(), config.review_limit)
            say(f"{name}: answering {len(reviewed)} review questions through the consultation prompt")
            scores.answers = review.answer_questions(runner, name, reviewed, config.review_max_tokens)
        memo = None
        if canaries:
            say(f"{name}: canary extraction ({len(canaries)} canaries)")
            memo = memorization.extraction(runner, canaries, config.canary_prefix_fraction)
    finally:
        runner.close()
    return scores, memo


def compare(reference: Scores, other: Scores) -> list[dict[str, Any]]:
    """Paired tests of ``other`` against ``reference`` on every benchmark both scored on the same items."""
    rows: list[dict[str, Any]] = []
    for key, detail in other.detail.items():
        first, second = reference.items.get(key), other.items.get(key)
        if first is None or second is None or len(first) != len(second) or not first:
            continue
        first, second = [round(v, PAIRED_DECIMALS) for v in first], [round(v, PAIRED_DECIMALS) for v in second]
        if detail["metric"] == "accuracy":
            test = stats.mcnemar_exact([v > 0.5 for v in first], [v > 0.5 for v in second])
            row: dict[str, Any] = {
                "test": "McNemar exact", "difference": round((sum(second) - sum(first)) / len(first), 4), **test,
            }
        else:
            row = {"test": "paired bootstrap", **stats.paired_bootstrap(first, second)}
            if detail["metric"] == "perplexity":
                row["compared"] = "mean log-loss per token of each item"
        better = row["difference"] > 0 if detail["higher_is_better"] else row["difference"] < 0
        changed = row["p_value"] < SIGNIFICANCE
        verdict = ("better" if better else "worse") if changed else "no significant change"
        row.update(
            benchmark=key,
            questions=len(first),
            verdict=verdict if len(first) >= MIN_PAIRED_ITEMS else "too few items to test",
        )
        rows.append(row)
    return rows


def training_contamination(config: EvalConfig, training_files: list[Path]) -> dict[str, Any]:
    """The dataset stage's overlap check, repeated on the training set this evaluation was given."""
    if not training_files:
        return {"checked": False, "reason": "no training set was given or found in the work directory"}
    index = ContaminationIndex.build(evaluation_texts(config))
    examples, found = 0, 0
    by_benchmark: dict[str, int] = {}
    for path in training_files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise InputError(f"cannot read training file {path.name}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                messages = row.get("messages") or []
                questions = [str(m["content"]) for m in messages if m.get("role") == "user"]
                content = row["text"] if row.get("text") is not None else "\n".join(str(m["content"]) for m in messages)
            except (ValueError, KeyError, TypeError, AttributeError):
                raise InputError(f"{path.name}: line {number} is not a training example") from None
            examples += 1
            match = index.match(questions, str(content))
            if match:
                found += 1
                by_benchmark[match] = by_benchmark.get(match, 0) + 1
    return {
        "checked": True,
        "files": [path.name for path in training_files],
        "examples": examples,
        "contaminated": found,
        "by_benchmark": dict(sorted(by_benchmark.items())),
        "evaluation_items": dict(sorted(index.items.items())),
    }


def _model_digest(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    weights = sorted(path.glob("*.safetensors"))
    return sha256_file(weights[0]) if len(weights) == 1 else "directory"


def _build(
    ctx: StageContext,
    config: EvalConfig,
    models: dict[str, Path],
    workdir: Path,
    heldout: list[str] | None,
    canaries: list[str],
    training_files: list[Path],
    judge_path: Path,
    say: Progress,
) -> dict[str, Any]:
    started = time.perf_counter()
    contamination = training_contamination(config, training_files)
    report: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings_summary": f"pubmedqa_limit={config.pubmedqa_limit}, few_shot={config.few_shot}, "
        f"mmlu_limit={config.mmlu_limit}, medquad_limit={config.medquad_limit}",
        "model_sha256": {name: _model_digest(path) for name, path in models.items()},
        "models": {},
        "benchmarks": {},
        "model_seconds": {},
        "contamination": contamination,
    }
    memo_models: dict[str, Any] = {}
    all_scores: dict[str, Scores] = {}
    for name, path in models.items():
        model_started = time.perf_counter()
        scores, memo = _evaluate_model(name, path, config, heldout, canaries, say)
        report["model_seconds"][name] = round(time.perf_counter() - model_started, 1)
        all_scores[name] = scores
        report["models"][name] = scores.flat
        report["benchmarks"][name] = scores.detail
        if memo is not None:
            memo_models[name] = memo
    answers = [answer for scores in all_scores.values() for answer in scores.answers]
    if answers:
        say(f"judge {judge_path.name}: grading {len(answers)} answers on the rubric")
        judge_runner = open_runner(judge_path, context_length=config.context_length, threads=config.threads, name="judge")
        try:
            review.judge(judge_runner, answers)
        finally:
            judge_runner.close()
        atomic_write_text(ctx.output_dir / REVIEW_FILE, json.dumps({"answers": answers}, indent=2))
        report["review"] = {
            "judge": {"model": judge_path.name, "sha256": _model_digest(judge_path), "weak": config.judge_model is None},
            "answers": len(answers),
            "judge_grades": review.summarize(answers, "judge"),
        }
    reference = all_scores.get(BASE_MODEL_NAME)
    report["comparisons"] = {
        name: compare(reference, scores) for name, scores in all_scores.items() if reference and name != BASE_MODEL_NAME
    }
    report["items"] = {name: scores.items for name, scores in all_scores.items()}
    gated = {name: memo for name, memo in memo_models.items() if name != BASE_MODEL_NAME}
    report["memorization"] = {
        "canaries": len(canaries),
        "models": memo_models,
        "passed": all(memo["extracted"] == 0 for memo in gated.values()),
        "gated_models": sorted(gated),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(ctx.output_dir / "report.json", json.dumps(report, indent=2, sort_keys=True))
    atomic_write_text(ctx.output_dir / "report.html", render_html(report))
    atomic_write_text(ctx.output_dir / "model-card.md", render_model_card(report, workdir))
    return {
        "models": report["models"],
        "memorization": report["memorization"],
        "contamination": {k: v for k, v in contamination.items() if k != "files"},
        "seconds": report["seconds"],
    }


def memorization_gate(result: StageResult) -> None:
    memo = result.manifest.details.get("memorization", {})
    if not memo.get("passed", True):
        failing = [
            f"{name}: {item['extracted']}/{item['canaries']}"
            for name, item in memo.get("models", {}).items()
            if name in memo.get("gated_models", []) and item["extracted"]
        ]
        raise GateError(
            f"memorization gate: planted canaries were completed ({', '.join(failing)}); "
            f"see {result.path('report.html')}"
        )


def evaluate_stage(
    settings: ApplianceSettings,
    *,
    models: dict[str, Path],
    workdir: Path,
    heldout_texts: Path | None,
    canaries: list[str] | None,
    progress: Progress | None = None,
    force: bool = False,
    training_files: list[Path] | None = None,
) -> StageResult:
    """Evaluate ``models`` (name -> GGUF file or HF directory) into ``<workdir>/evaluate``.

    The model named ``base`` is reported but not gated by the canary check: it never saw the records.
    ``training_files`` are checked for overlap with the benchmarks; by default the dataset stage's
    train and validation sets in ``workdir``, when there are any.
    """
    if not models:
        raise InputError("no models to evaluate")
    for name, path in models.items():
        if not path.exists():
            raise InputError(f"model '{name}' not found: {path}")
    config = settings.eval
    heldout = read_texts(heldout_texts) if heldout_texts else None
    planted = [canary for canary in (canaries or []) if canary.strip()]
    recorded = {
        "eval": json.loads(config.model_dump_json()),
        "models": sorted(models),
        "canaries_sha256": hashlib.sha256("\n".join(planted).encode()).hexdigest(),
    }
    if training_files is None:
        dataset = finished_stage(workdir, DATASET_STAGE)
        training_files = [] if dataset is None else [
            path for path in (dataset.path(TRAIN_FILE), dataset.path(VALIDATION_FILE)) if path.is_file()
        ]
    judge_path = config.judge_model or settings.serve.model or embedded_model_path()
    if config.review_limit and not judge_path.is_file():
        raise InputError(f"judge model not found: {judge_path}")
    inputs = {f"model:{name}": path for name, path in models.items()}
    if config.review_limit:
        inputs["judge"] = judge_path
    if heldout_texts is not None:
        inputs["heldout"] = heldout_texts
    for index, path in enumerate(training_files):
        inputs[f"training{index}"] = path
    say = progress or (lambda _message: None)
    result = run_stage(
        workdir,
        STAGE_NAME,
        settings=recorded,
        inputs=inputs,
        build=lambda ctx: _build(ctx, config, models, workdir, heldout, planted, training_files, judge_path, say),
        force=force,
    )
    memorization_gate(result)
    return result


def default_models(workdir: Path, base_model: Path) -> dict[str, Path]:
    """Base, the fine-tuned reference GGUF and every accepted quant, from the export stage in ``workdir``."""
    export = finished_stage(workdir, EXPORT_STAGE)
    if export is None:
        raise InputError(f"no finished export stage in {workdir}; run 'appliance export' first")
    export_dir = export.directory
    try:
        parity = json.loads(export.path("parity.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"no finished export stage in {workdir}; run 'appliance export' first") from None
    models = {BASE_MODEL_NAME: base_model, "fine-tuned": export_dir / parity["reference"]["file"]}
    for quant in parity["quantizations"]:
        models[f"fine-tuned-{quant['type']}"] = export_dir / quant["file"]
    return models


def _reviewed_answers(workdir: Path) -> tuple[Path, list[dict[str, Any]]]:
    directory = workdir / STAGE_NAME
    try:
        answers = json.loads((directory / REVIEW_FILE).read_text(encoding="utf-8"))["answers"]
    except (OSError, ValueError, KeyError):
        raise InputError(f"no rubric review in {directory}; run 'appliance eval' with eval.review_limit > 0 first") from None
    return directory, answers


def write_review_sheet(workdir: Path, out: Path) -> list[Path]:
    """The blinded sheet clinicians grade: ``review-sheet.html`` to read, ``review.csv`` to fill in."""
    _, answers = _reviewed_answers(workdir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "review-sheet.html", out / "review.csv"]
    atomic_write_text(written[0], review.review_html(answers))
    atomic_write_text(written[1], review.review_csv(answers))
    return written


def import_review(settings: ApplianceSettings, workdir: Path, grades_file: Path, force: bool = False) -> StageResult:
    """Clinicians' grades into ``<workdir>/review/``: the report and model card again, with their grades beside the judge's."""
    directory, answers = _reviewed_answers(workdir)
    if not grades_file.is_file():
        raise InputError(f"review file not found: {grades_file}")
    grades = review.read_grades(grades_file, answers)

    def build(ctx: StageContext) -> dict[str, Any]:
        report = json.loads((directory / "report.json").read_text(encoding="utf-8"))
        for answer in answers:
            if answer["answer_id"] in grades:
                answer["human"] = grades[answer["answer_id"]]
        report["human_review"] = {"graded": len(grades), "grades": review.summarize(answers, "human")}
        atomic_write_text(ctx.output_dir / "human-review.json", json.dumps(report["human_review"], indent=2))
        atomic_write_text(ctx.output_dir / "report.html", render_html(report))
        atomic_write_text(ctx.output_dir / "model-card.md", render_model_card(report, workdir))
        return {"graded": len(grades), "grades": report["human_review"]["grades"]}

    return run_stage(
        workdir, "review", settings={"grades": len(grades)},
        inputs={"grades": grades_file, "report": directory / "report.json", "answers": directory / REVIEW_FILE},
        build=build, force=force,
    )
