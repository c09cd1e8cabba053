"""The audit report as one self-contained HTML page: inline CSS and SVG, no scripts, no external assets.

Auditors open it on machines without network access, and a page that fetched nothing cannot
leak anything either. All values go through Jinja's autoescaping.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2

CHART_WIDTH = 720
CHART_HEIGHT = 180
CHART_MARGIN = 30
MAX_BAR_WIDTH = 48
# Longer tables stay in report.json; a page with 50,000 rows helps no one.
MAX_ROWS = 500


def _timeline_bars(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """Bar geometry for the documents-per-bucket chart, computed here so the template stays declarative."""
    buckets = timeline["buckets"]
    if not buckets:
        return []
    peak = max(b["documents"] for b in buckets) or 1
    slot = (CHART_WIDTH - 2 * CHART_MARGIN) / len(buckets)
    usable = CHART_HEIGHT - 2 * CHART_MARGIN
    bars = []
    for index, bucket in enumerate(buckets):
        height = usable * bucket["documents"] / peak
        width = min(max(slot * 0.8, 1.0), MAX_BAR_WIDTH)
        bars.append(
            {
                "x": round(CHART_MARGIN + index * slot + (slot - width) / 2, 2),
                "y": round(CHART_HEIGHT - CHART_MARGIN - height, 2),
                "width": round(width, 2),
                "height": round(height, 2),
                "label": bucket["bucket"],
                "documents": bucket["documents"],
                "entities": bucket["entities"],
                "show_label": len(buckets) <= 12 or index % max(1, len(buckets) // 12) == 0,
            }
        )
    return bars


def render_html(report: dict[str, Any]) -> str:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    template_text = resources.files("deid.ledger").joinpath("report_template.html").read_text(encoding="utf-8")
    template = environment.from_string(template_text)
    return template.render(
        report=report,
        bars=_timeline_bars(report["timeline"]),
        chart={"width": CHART_WIDTH, "height": CHART_HEIGHT, "margin": CHART_MARGIN},
        type_peak=max(report["by_type"].values(), default=1),
        max_rows=MAX_ROWS,
    )
