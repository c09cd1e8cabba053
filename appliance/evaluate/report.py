"""The evaluation report as self-contained HTML: one table and inline SVG bar charts, no scripts."""

from __future__ import annotations

from html import escape
from typing import Any

# (metric key in a model's results, chart title, higher is better)
CHARTED: tuple[tuple[str, str, bool], ...] = (
    ("pubmedqa_zero_shot", "PubMedQA accuracy, zero-shot", True),
    ("pubmedqa_few_shot", "PubMedQA accuracy, few-shot", True),
    ("medquad_rouge_l", "MedQuAD ROUGE-L", True),
    ("medquad_answer_perplexity", "MedQuAD answer perplexity", False),
    ("heldout_perplexity", "Held-out notes perplexity", False),
)
_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else escape(str(value))


def bar_chart(title: str, values: dict[str, float], higher_is_better: bool) -> str:
    """A horizontal bar per model, scaled to the largest value."""
    bar_height, label_width, width = 22, 150, 520
    height = 30 + bar_height * len(values)
    top = max(values.values()) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}'
        f' ({"higher" if higher_is_better else "lower"} is better)</text>'
    ]
    for index, (name, value) in enumerate(values.items()):
        y = 26 + index * bar_height
        length = max(1.0, (width - label_width - 70) * value / top)
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12">{escape(name)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{bar_height - 6}" fill="{colour}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 15}" font-size="12">{value:.4g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    models: dict[str, dict[str, Any]] = report["models"]
    columns = sorted({key for results in models.values() for key in results if not isinstance(results[key], dict)})
    header = "".join(f"<th>{escape(column)}</th>" for column in columns)
    rows = "".join(
        f"<tr><th>{escape(name)}</th>" + "".join(f"<td>{_number(results.get(c))}</td>" for c in columns) + "</tr>"
        for name, results in models.items()
    )
    charts = []
    for key, title, higher in CHARTED:
        values = {name: float(r[key]) for name, r in models.items() if isinstance(r.get(key), (int, float))}
        if values:
            charts.append(f"<figure>{bar_chart(title, values, higher)}</figure>")
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
<p>Generated {escape(str(report.get("generated_at", "")))}; settings: {escape(str(report.get("settings_summary", "")))}.</p>
<h2>Results</h2><table><tr><th>model</th>{header}</tr>{rows}</table>
<h2>Charts</h2>{"".join(charts) or "<p>No numeric results.</p>"}
<h2>Memorization check</h2>
<p class="{"pass" if verdict == "PASSED" else "fail"}">Canary extraction gate: {verdict}</p>
<table><tr><th>model</th><th>extracted</th><th>rate</th></tr>{memo_rows}</table>
</body></html>
"""
