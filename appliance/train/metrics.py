"""Training metrics as JSON lines and a loss-curve PNG (numbers only, never text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deid.fileio import atomic_write_text


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def plot_loss(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train"]
    evals = [(r["step"], r["val_loss"]) for r in rows if r.get("kind") == "eval"]
    figure, axes = pyplot.subplots(figsize=(6, 4), dpi=100)
    if train:
        axes.plot(*zip(*train, strict=True), label="training loss")
    if evals:
        axes.plot(*zip(*evals, strict=True), marker="o", label="validation loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title("LoRA fine-tuning")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary)
    pyplot.close(figure)
    temporary.replace(path)
