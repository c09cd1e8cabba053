"""The evaluation report as self-contained HTML: tables and inline SVG charts with intervals, no scripts.

Every number stands beside what would make it meaningful: its 95% interval, what guessing
scores (chance and the commonest answer), whether the model collapsed onto one answer, and,
for a fine-tuned model, a paired test against the base on the same items.
"""

from __future__ import annotations

from html import escape
from typing import Any

TITLES = {
    "pubmedqa_zero_shot": "PubMedQA accuracy, zero-shot",
    "pubmedqa_few_shot": "PubMedQA accuracy, few-shot",
    "mmlu_medical": "MMLU medical subjects, accuracy",
    "medquad_rouge_l": "MedQuAD held-out answers, ROUGE-L",
    "medquad_answer_perplexity": "MedQuAD reference-answer perplexity",
    "heldout_perplexity": "Held-out notes perplexity",
}
_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def title(key: str) -> str:
    if key in TITLES:
        return TITLES[key]
    return f"{key.removeprefix('mc_')} (multiple choice), accuracy" if key.startswith("mc_") else key


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else escape(str(value))


def interval_chart(heading: str, rows: dict[str, dict[str, Any]], baseline: float | None = None) -> str:
    """One bar per model with its 95% interval as a whisker; an optional dashed line for the best guess."""
    bar_height, label_width, width = 24, 170, 600
    plot = width - label_width - 110
    height = 34 + bar_height * len(rows) + 16
    higher = next(iter(rows.values())).get("higher_is_better", True)
    top = max([float(r["ci_high"]) for r in rows.values()] + [baseline or 0.0]) or 1.0

    def x(value: float) -> float:
        return label_width + plot * value / top

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(heading)}"><text x="0" y="16" font-size="13" font-weight="bold">{escape(heading)}'
            f' ({"higher" if higher else "lower"} is better; whiskers: 95% interval)</text>'
        )
    ]
    for index, (name, row) in enumerate(rows.items()):
        y = 28 + index * bar_height
        value, low, high = float(row["value"]), float(row["ci_low"]), float(row["ci_high"])
        middle = y + bar_height / 2
        parts.append(
            f'<text x="0" y="{middle + 4:.1f}" font-size="12">{escape(name)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{max(1.0, x(value) - label_width):.1f}" '
            f'height="{bar_height - 8}" fill="{_COLOURS[index % len(_COLOURS)]}"/>'
            f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{middle:.1f}" y2="{middle:.1f}" stroke="#000"/>'
            f'<line x1="{x(low):.1f}" x2="{x(low):.1f}" y1="{y + 6}" y2="{y + bar_height - 6}" stroke="#000"/>'
            f'<line x1="{x(high):.1f}" x2="{x(high):.1f}" y1="{y + 6}" y2="{y + bar_height - 6}" stroke="#000"/>'
            f'<text x="{x(high) + 6:.1f}" y="{middle + 4:.1f}" font-size="12">'
            f"{value:.3g} [{low:.3g}, {high:.3g}]</text>"
        )
    if baseline is not None:
        bottom = 28 + bar_height * len(rows)
        parts.append(
            f'<line x1="{x(baseline):.1f}" x2="{x(baseline):.1f}" y1="24" y2="{bottom}" stroke="#b00" '
            f'stroke-dasharray="4 3"/><text x="{x(baseline) + 3:.1f}" y="{bottom + 12}" font-size="11" '
            f'fill="#b00">best guess {baseline:.3g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _benchmark_keys(benchmarks: dict[str, dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for detail in benchmarks.values() for key in detail))


def flags(row: dict[str, Any]) -> str:
    notes = []
    if row.get("collapsed"):
        notes.append(f"COLLAPSED: gives {row['most_given']!s} for {row['most_given_share']:.0%} of items")
    if row.get("metric") == "accuracy" and "majority" in row:
        guess = max(float(row.get("chance", 0.0)), float(row["majority"]))
        if row["ci_high"] < guess:
            notes.append("below guessing")
        elif row["ci_low"] <= guess:
            notes.append("not distinguishable from guessing")
    return "; ".join(notes)


def benchmark_table(key: str, rows: dict[str, dict[str, Any]]) -> str:
    accuracy = any(row.get("metric") == "accuracy" for row in rows.values())
    extra = "<th>chance</th><th>commonest answer</th><th>predictions</th>" if accuracy else ""
    body = ""
    for name, row in rows.items():
        cells = (
            f"<td>{row['value']:.4g}</td><td>[{row['ci_low']:.4g}, {row['ci_high']:.4g}]</td>"
            f"<td>{row['questions']}</td><td>{row.get('seconds', 0):.1f}</td>"
        )
        if accuracy:
            spread = ", ".join(f"{label}: {count}" for label, count in sorted(row.get("predicted", {}).items()))
            cells += f"<td>{row.get('chance', 0):.3g}</td><td>{row.get('majority', 0):.3g}</td><td>{escape(spread)}</td>"
        flag = flags(row)
        cells += f'<td class="{"fail" if flag else ""}">{escape(flag)}</td>'
        body += f"<tr><th>{escape(name)}</th>{cells}</tr>"
    return (
        f"<h3>{escape(title(key))}</h3><table><tr><th>model</th><th>value</th><th>95% interval</th>"
        f"<th>items</th><th>seconds</th>{extra}<th>flags</th></tr>{body}</table>"
    )


def comparisons_table(comparisons: dict[str, list[dict[str, Any]]]) -> str:
    rows = "".join(
        f"<tr><th>{escape(model)}</th><td>{escape(title(row['benchmark']))}</td><td>{row['questions']}</td>"
        f"<td>{row['difference']:+.4g}</td><td>{escape(row['test'])}</td><td>{row['p_value']:.3g}</td>"
        f'<td class="{"pass" if row["verdict"] == "better" else "fail" if row["verdict"] == "worse" else ""}">'
        f"{escape(row['verdict'])}</td></tr>"
        for model, listed in comparisons.items()
        for row in listed
    )
    if not rows:
        return "<p>No model named 'base' was evaluated, so there is no paired comparison.</p>"
    return (
        "<p>Each model against the base on the same items: exact McNemar test for accuracies, paired "
        "bootstrap of the per-item difference for ROUGE-L and log-loss (for perplexities, a negative "
        "difference is an improvement). A change is called only at p &lt; 0.05.</p>"
        "<table><tr><th>model</th><th>benchmark</th><th>items</th><th>difference vs base</th><th>test</th>"
        f"<th>p</th><th>verdict</th></tr>{rows}</table>"
    )


def contamination_section(check: dict[str, Any]) -> str:
    if not check.get("checked"):
        return f"<p>Not checked: {escape(str(check.get('reason', '')))}.</p>"
    items = sum(check.get("evaluation_items", {}).values())
    verdict = "pass" if check["contaminated"] == 0 else "fail"
    found = ", ".join(f"{k}: {v}" for k, v in check.get("by_benchmark", {}).items()) or "none"
    return (
        f'<p class="{verdict}">{check["contaminated"]} of {check["examples"]} training/validation examples '
        f"({escape(', '.join(check.get('files', [])))}) overlap one of {items} evaluation items "
        f"(question match or a shared 13-word run); by benchmark: {escape(found)}.</p>"
    )


def _grades_table(grades: dict[str, dict[str, dict[str, float]]]) -> str:
    criteria = list(dict.fromkeys(c for per_model in grades.values() for c in per_model))
    header = "".join(f"<th>{escape(c)}</th>" for c in criteria)
    rows = "".join(
        f"<tr><th>{escape(model)}</th>"
        + "".join(
            f"<td>{g[c]['mean']:.2f} [{g[c]['ci_low']:.2f}, {g[c]['ci_high']:.2f}] (n={g[c]['answers']})</td>"
            if c in g else "<td>n/a</td>"
            for c in criteria
        )
        + "</tr>"
        for model, g in grades.items()
    )
    return f"<table><tr><th>model</th>{header}</tr>{rows}</table>"


def review_section(report: dict[str, Any]) -> str:
    """Judge grades, marked weak when the judge is the served model itself, and clinicians' grades when imported."""
    found = report.get("review")
    if not found:
        return "<p>No rubric review ran (eval.review_limit = 0).</p>"
    judge = found["judge"]
    warning = (
        f'<p class="fail">Weak judge: {escape(judge["model"])} is the served model grading answers like its own; '
        "treat these grades as a smoke test and rely on clinicians' grades.</p>"
        if judge.get("weak") else f"<p>Judge: {escape(judge['model'])} (sha256 {escape(judge['sha256'])}).</p>"
    )
    human = report.get("human_review")
    clinicians = (
        f"<h3>Clinicians' grades ({human['graded']} answers graded by hand)</h3>{_grades_table(human['grades'])}"
        if human else "<p>No clinician grades yet: <code>appliance eval review-sheet --out DIR</code>, then "
        "<code>appliance eval import-review FILE</code>.</p>"
    )
    return (
        f"<p>{found['answers']} answers to MedQuAD held-out questions, asked through the consultation API's prompt, "
        "graded 1-5 per criterion (mean and bootstrap 95% interval).</p>"
        f"{warning}<h3>Judge model's grades</h3>{_grades_table(found['judge_grades'])}{clinicians}"
    )


def render_html(report: dict[str, Any]) -> str:
    benchmarks: dict[str, dict[str, dict[str, Any]]] = report.get("benchmarks", {})
    keys = _benchmark_keys(benchmarks)
    sections, charts = [], []
    for key in keys:
        rows = {name: detail[key] for name, detail in benchmarks.items() if key in detail}
        sections.append(benchmark_table(key, rows))
        first = next(iter(rows.values()))
        guess = max(float(first.get("chance", 0.0)), float(first.get("majority", 0.0))) if "majority" in first else None
        charts.append(f"<figure>{interval_chart(title(key), rows, guess)}</figure>")
    timing = ", ".join(f"{escape(name)} {seconds:.0f} s" for name, seconds in report.get("model_seconds", {}).items())
    memo = report.get("memorization", {})
    verdict = "PASSED" if memo.get("passed", True) else "FAILED"
    memo_rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{item['extracted']} / {item['canaries']}</td><td>{item['extraction_rate']:.2%}</td></tr>"
        for name, item in memo.get("models", {}).items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th:first-child{{text-align:left}}
figure{{margin:1em 0}}.fail{{color:#b00}}.pass{{color:#070}}</style></head><body>
<h1>Evaluation report</h1>
<p>Generated {escape(str(report.get("generated_at", "")))}; settings: {escape(str(report.get("settings_summary", "")))}.
The evaluation took {report.get("seconds", 0):.0f} s ({timing}).</p>
<p>Multiple choice is scored by likelihood: each option's text after the question, mean log-probability
per token (so long options are not penalised for their length); PubMedQA by the likelihood of " yes",
" no" and " maybe" after the prompt. Accuracies carry Wilson 95% intervals, ROUGE-L and perplexities
percentile-bootstrap intervals over items. A model is flagged when one answer makes up more than 80%
of its predictions, or when its interval does not clear the best guess (chance or always giving the
commonest correct answer).</p>
<h2>Training-set contamination</h2>{contamination_section(report.get("contamination", {}))}
<h2>Benchmarks</h2>{"".join(sections) or "<p>No benchmark ran.</p>"}
<h2>Did fine-tuning change anything?</h2>{comparisons_table(report.get("comparisons", {}))}
<h2>Rubric review of consultation answers</h2>{review_section(report)}
<h2>Charts</h2>{"".join(charts) or "<p>No numeric results.</p>"}
<h2>Memorization check</h2>
<p class="{"pass" if verdict == "PASSED" else "fail"}">Canary extraction gate: {verdict}</p>
<table><tr><th>model</th><th>extracted</th><th>rate</th></tr>{memo_rows}</table>
</body></html>
"""
