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
from appliance.errors import GateError, InputError
from appliance.evaluate import medqa, medquad, memorization, pubmedqa
from appliance.evaluate.config import EvalConfig
from appliance.evaluate.model_card import render_model_card
from appliance.evaluate.report import render_html
from appliance.export.heldout import read_texts
from appliance.export.runners import open_runner, perplexity
from appliance.pipeline.stage import StageContext, StageResult, run_stage
from deid.fileio import atomic_write_text, sha256_file

STAGE_NAME = "evaluate"
BASE_MODEL_NAME = "base"
Progress = Callable[[str], None]


def _evaluate_model(
    name: str,
    path: Path,
    config: EvalConfig,
    heldout: list[str] | None,
    canaries: list[str],
    say: Progress,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    runner = open_runner(path, context_length=config.context_length, threads=config.threads, name=name)
    results: dict[str, Any] = {}
    try:
        questions = pubmedqa.load_test_split(config.pubmedqa_limit, config.pubmedqa_context_chars)
        say(f"{name}: PubMedQA zero-shot ({len(questions)} questions)")
        zero = pubmedqa.evaluate(runner, questions, [])
        results["pubmedqa_zero_shot"] = zero["accuracy"]
        results["pubmedqa_questions"] = zero["questions"]
        results["pubmedqa_zero_shot_predicted"] = {label: zero[f"predicted_{label}"] for label in pubmedqa.LABELS}
        if config.few_shot:
            say(f"{name}: PubMedQA {config.few_shot}-shot")
            demos = pubmedqa.load_demonstrations(config.few_shot, config.pubmedqa_context_chars)
            results["pubmedqa_few_shot"] = pubmedqa.evaluate(runner, questions, demos)["accuracy"]
        for file in config.medqa_files:
            say(f"{name}: multiple choice {file.name}")
            results[f"mc_{file.stem}_accuracy"] = medqa.evaluate(runner, medqa.load_medqa(file, config.medqa_limit))["accuracy"]
        if config.medquad_limit:
            say(f"{name}: MedQuAD held-out answers")
            items = medquad.load_medquad(config.medquad_file or medquad.shipped_heldout(), config.medquad_limit)
            scored = medquad.evaluate(runner, items, config.answer_max_tokens)
            results["medquad_answer_perplexity"] = scored["answer_perplexity"]
            results["medquad_rouge_l"] = scored["rouge_l"]
        if heldout:
            say(f"{name}: held-out notes perplexity")
            results["heldout_perplexity"] = round(perplexity(runner, heldout, config.perplexity_max_tokens), 4)
        memo = None
        if canaries:
            say(f"{name}: canary extraction ({len(canaries)} canaries)")
            memo = memorization.extraction(runner, canaries, config.canary_prefix_fraction)
    finally:
        runner.close()
    return results, memo


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
    say: Progress,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings_summary": f"pubmedqa_limit={config.pubmedqa_limit}, few_shot={config.few_shot}, "
        f"medquad_limit={config.medquad_limit}",
        "model_sha256": {name: _model_digest(path) for name, path in models.items()},
        "models": {},
    }
    memo_models: dict[str, Any] = {}
    for name, path in models.items():
        results, memo = _evaluate_model(name, path, config, heldout, canaries, say)
        report["models"][name] = results
        if memo is not None:
            memo_models[name] = memo
    gated = {name: memo for name, memo in memo_models.items() if name != BASE_MODEL_NAME}
    report["memorization"] = {
        "canaries": len(canaries),
        "models": memo_models,
        "passed": all(memo["extracted"] == 0 for memo in gated.values()),
        "gated_models": sorted(gated),
    }
    atomic_write_text(ctx.output_dir / "report.json", json.dumps(report, indent=2, sort_keys=True))
    atomic_write_text(ctx.output_dir / "report.html", render_html(report))
    atomic_write_text(ctx.output_dir / "model-card.md", render_model_card(report, workdir))
    return {"models": report["models"], "memorization": report["memorization"]}


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
) -> StageResult:
    """Evaluate ``models`` (name -> GGUF file or HF directory) into ``<workdir>/evaluate``.

    The model named ``base`` is reported but not gated by the canary check: it never saw the records.
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
    inputs = {f"model:{name}": path for name, path in models.items()}
    if heldout_texts is not None:
        inputs["heldout"] = heldout_texts
    say = progress or (lambda _message: None)
    result = run_stage(
        workdir,
        STAGE_NAME,
        settings=recorded,
        inputs=inputs,
        build=lambda ctx: _build(ctx, config, models, workdir, heldout, planted, say),
        force=force,
    )
    memorization_gate(result)
    return result


def default_models(workdir: Path, base_model: Path) -> dict[str, Path]:
    """Base, the fine-tuned reference GGUF and every accepted quant, from the export stage in ``workdir``."""
    export_dir = workdir / "export"
    try:
        parity = json.loads((export_dir / "parity.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"no finished export stage in {workdir}; run 'appliance export' first") from None
    models = {BASE_MODEL_NAME: base_model, "fine-tuned": export_dir / parity["reference"]["file"]}
    for quant in parity["quantizations"]:
        models[f"fine-tuned-{quant['type']}"] = export_dir / quant["file"]
    return models
