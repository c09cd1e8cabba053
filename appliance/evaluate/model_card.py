"""The model card: where the served model came from, what it was trained on (counts only), how it scored.

Lineage is read from the stage manifests in the work directory, so the card states exactly
the hashes an auditor can re-check: GGUF -> merged model -> adapter -> dataset -> ledger head.
Only numbers and hashes are taken from manifests, never strings that could carry record text.
Every training stage that ran is described, in recipe order (continued pretraining, instruction
tuning, preference alignment): the served adapter holds all of them, not only the last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.evaluate.report import flags, title
from appliance.pipeline.stage import StageManifest, finished_stage, load_manifest
from appliance.train.config import Method

INTENDED_USE = (
    "Decision support and documentation help for clinicians inside the hospital network: answering "
    "general medical questions and summarising de-identified clinical text. A clinician reviews every output."
)
LIMITATIONS = (
    "- Not a medical device; never use it for diagnosis or treatment decisions without clinician review.\n"
    "- Small models hallucinate: answers can be fluent and wrong, including doses and contraindications.\n"
    "- Benchmarks here are small subsets; scores carry wide confidence intervals.\n"
    "- Trained on one hospital's de-identified records: it reflects that population, its practice and its biases.\n"
    "- Quantized variants trade some accuracy for speed; prefer the highest precision the hardware allows."
)


def _stage_manifests(workdir: Path) -> dict[str, StageManifest]:
    found: dict[str, StageManifest] = {}
    if not workdir.is_dir():
        return found
    for directory in sorted(p for p in workdir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = load_manifest(directory)
        if manifest is not None:
            found[manifest.stage] = manifest
    return found


def _find_ledger_head(value: Any) -> str | None:
    """A ledger head hash recorded anywhere in a manifest's details (key naming a ledger head)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if "ledger" in key.lower() and "head" in key.lower() and isinstance(item, str):
                return item
            nested = _find_ledger_head(item)
            if nested:
                return nested
    return None


def _counts(details: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, int | float]]:
    rows: list[tuple[str, int | float]] = []
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            rows.append((name, value))
        elif isinstance(value, dict) and depth < 2:
            rows.extend(_counts(value, f"{name}.", depth + 1))
    return rows


def _training_stages(workdir: Path) -> list[StageManifest]:
    """The finished training stages in recipe order: train-cpt, train (instruction tuning), train-dpo."""
    from appliance.train.stage import stage_name  # torch-heavy module: only when a card is rendered

    return [result.manifest for method in Method if (result := finished_stage(workdir, stage_name(method)))]


def _adapter_stage(manifests: dict[str, StageManifest]) -> list[StageManifest]:
    """Without a training stage, the stage that wrote an adapter (e.g. a merge of adapters) stands in."""
    found = next(
        (m for m in manifests.values() if any(a.path.endswith("adapter_model.safetensors") for a in m.artifacts)), None
    )
    return [found] if found is not None else []


def lineage(workdir: Path, model_hashes: dict[str, str]) -> list[str]:
    manifests = _stage_manifests(workdir)
    lines = [f"- GGUF `{name}`: sha256 `{digest}`" for name, digest in model_hashes.items()]
    export = manifests.get("export")
    if export is not None:
        merged = [a for a in export.artifacts if a.path.startswith("merged/") and a.path.endswith(".safetensors")]
        lines += [f"- merged model `{a.path}`: sha256 `{a.sha256}`" for a in merged]
        for name in ("adapter", "base_model"):
            if name in export.inputs:
                lines.append(f"- {name.replace('_', ' ')} (input of export): sha256 `{export.inputs[name]}`")
    for train in _training_stages(workdir) or _adapter_stage(manifests):
        lines.append(f"- training stage `{train.stage}`: fingerprint `{train.fingerprint}`")
        lines += [f"  - input `{k}`: sha256 `{v}`" for k, v in sorted(train.inputs.items())]
    dataset = manifests.get("dataset")
    if dataset is not None:
        lines.append(f"- dataset stage: fingerprint `{dataset.fingerprint}`")
        lines += [f"  - `{a.path}`: sha256 `{a.sha256}`" for a in dataset.artifacts if a.path.endswith(".json")][:5]
    head = next((h for m in manifests.values() if (h := _find_ledger_head(m.details))), None)
    lines.append(f"- de-identification ledger head: `{head}`" if head else "- de-identification ledger head: not recorded in the work directory")
    return lines


def training_summary(workdir: Path) -> list[str]:
    manifests = _stage_manifests(workdir)
    rows: list[str] = []
    dataset = manifests.get("dataset")
    for manifest in ([dataset] if dataset is not None else []) + _training_stages(workdir):
        rows += [f"| {manifest.stage} | {key} | {value} |" for key, value in _counts(manifest.details)]
    if not rows:
        return ["No dataset or training manifest was found in the work directory."]
    return ["| stage | count | value |", "|---|---|---|", *rows]


def _results_table(benchmarks: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "| benchmark | model | value | 95% interval | items | chance | commonest answer | flags |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys(key for detail in benchmarks.values() for key in detail))
    for key in keys:
        for name, detail in benchmarks.items():
            row = detail.get(key)
            if row is None:
                continue
            guesses = (
                f"{row['chance']:.3g} | {row['majority']:.3g}" if "majority" in row else "n/a | n/a"
            )
            lines.append(
                f"| {title(key)} | {name} | {row['value']:.4g} | [{row['ci_low']:.4g}, {row['ci_high']:.4g}] | "
                f"{row['questions']} | {guesses} | {flags(row) or '-'} |"
            )
    return lines


def _comparison_lines(comparisons: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        f"- {model}, {title(row['benchmark'])}: {row['verdict']} (difference {row['difference']:+.4g}, "
        f"{row['test']} p = {row['p_value']:.3g}, {row['questions']} items)"
        for model, rows in comparisons.items()
        for row in rows
    ]
    return lines or ["- no base model was evaluated beside it, so no paired comparison was made"]


def _contamination_line(check: dict[str, Any]) -> str:
    if not check.get("checked"):
        return "Training-set contamination: not checked (no training set was given)."
    return (
        f"Training-set contamination: {check['contaminated']} of {check['examples']} training/validation "
        f"examples overlap an evaluation item ({sum(check.get('evaluation_items', {}).values())} items checked)."
    )


def _review_lines(report: dict[str, Any]) -> list[str]:
    found = report.get("review")
    if not found:
        return ["Rubric review: not run."]
    weak = " (the served model grading itself: a weak judge)" if found["judge"].get("weak") else ""
    lines = [f"Rubric review of {found['answers']} consultation answers, judge {found['judge']['model']}{weak}:"]
    for source, grades in (("judge", found["judge_grades"]), ("clinicians", (report.get("human_review") or {}).get("grades", {}))):
        for model, per_criterion in grades.items():
            shown = ", ".join(f"{c} {g['mean']:.2f} [{g['ci_low']:.2f}, {g['ci_high']:.2f}]" for c, g in per_criterion.items())
            lines.append(f"- {source}, {model}: {shown}")
    if not report.get("human_review"):
        lines.append("- clinicians: not graded yet")
    return lines


def render_model_card(report: dict[str, Any], workdir: Path) -> str:
    memo = report.get("memorization", {})
    memo_lines = [
        f"- {name}: {item['extracted']} of {item['canaries']} canaries extracted ({item['extraction_rate']:.1%})"
        for name, item in memo.get("models", {}).items()
    ] or ["- no canaries were given; the memorization check did not run"]
    sections = [
        "# Model card",
        "",
        "## Lineage",
        *lineage(workdir, report.get("model_sha256", {})),
        "",
        "## Training data",
        "Trained on de-identified records of this hospital and public medical Q&A; counts from the manifests:",
        "",
        *training_summary(workdir),
        "",
        "## Evaluation",
        (
            f"Evaluation took {report.get('seconds', 0):.0f} s. Intervals are 95% (Wilson for accuracies, "
            "bootstrap for ROUGE-L and perplexity)."
        ),
        "",
        *_results_table(report.get("benchmarks", {})),
        "",
        "Fine-tuned against base on the same items:",
        *_comparison_lines(report.get("comparisons", {})),
        "",
        _contamination_line(report.get("contamination", {})),
        "",
        *_review_lines(report),
        "",
        f"Memorization check ({'passed' if memo.get('passed', True) else 'FAILED'}):",
        *memo_lines,
        "",
        "## Intended use",
        INTENDED_USE,
        "",
        "## Limitations",
        LIMITATIONS,
        "",
        (
            "Benchmarks: MMLU medical subjects (MIT), PubMedQA (MIT), MedQuAD (CC BY 4.0); see the appliance's "
            "benchmark attribution."
        ),
    ]
    return "\n".join(sections) + "\n"

