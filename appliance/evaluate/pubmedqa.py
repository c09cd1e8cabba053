"""PubMedQA (expert-labelled test split): yes / no / maybe from an abstract, zero- and few-shot."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from appliance.evaluate.choices import rank_options
from appliance.evaluate.multiple_choice import collapse
from appliance.export.runners import ModelRunner
from deid.errors import InputError

LABELS = ("yes", "no", "maybe")


@dataclass(frozen=True)
class PubMedQAItem:
    id: str
    question: str
    context: str
    answer: str


def _benchmarks() -> Path:
    return Path(str(resources.files("appliance.data") / "benchmarks"))


def _read(path: Path, context_chars: int) -> list[PubMedQAItem]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError):
        raise InputError(f"cannot read PubMedQA file {path}") from None
    return [
        PubMedQAItem(str(row["id"]), row["question"], " ".join(row["contexts"])[:context_chars], row["answer"])
        for row in rows
    ]


def load_test_split(limit: int | None, context_chars: int) -> list[PubMedQAItem]:
    """The first ``limit`` test questions.

    The shipped file is ordered by sha256 of the PubMed id (upstream lists all "yes" first), so
    any prefix is a fixed pseudo-random sample and subsets stay comparable across runs.
    """
    items = _read(_benchmarks() / "pubmedqa-test.jsonl.gz", context_chars)
    return items[:limit] if limit else items


def load_demonstrations(count: int | None, context_chars: int) -> list[PubMedQAItem]:
    """The first ``count`` demonstrations (None: all); shorter contexts, so a few-shot prompt fits small windows."""
    return _read(_benchmarks() / "pubmedqa-fewshot.jsonl", context_chars // 2)[:count]


def format_question(item: PubMedQAItem) -> str:
    return f"Context: {item.context}\nQuestion: {item.question}\nAnswer with yes, no or maybe.\nAnswer:"


def build_prompt(item: PubMedQAItem, demonstrations: list[PubMedQAItem]) -> str:
    """A raw completion prompt for every model, chat-tuned or not (unlike MedQuAD's generation).

    Scoring compares the options' likelihoods with each other, so an instruct model's wish to
    end its turn at once, which ruins generated answers, cancels out here. One prompt for every
    row also keeps base, fine-tuned and quantized models comparable in the table, and few-shot
    demonstrations stay plain text instead of a per-template multi-turn chat. Measured on the
    embedded SmolLM2-135M-Instruct, first 100 test questions (55 yes / 34 no / 11 maybe), zero-shot:
    raw 0.35 with 99 "no" picks, through its chat template 0.52 with 82 "yes" picks. Both are a
    collapse onto one label, below always-"yes" (0.55): the template shifts the label bias rather
    than improving correctness, so it is not used.
    """
    shots = "".join(f"{format_question(demo)} {demo.answer}\n\n" for demo in demonstrations)
    return shots + format_question(item)


def evaluate(runner: ModelRunner, items: list[PubMedQAItem], demonstrations: list[PubMedQAItem]) -> dict[str, Any]:
    """Each label scored by its log-likelihood after the prompt (one token each, so no length
    normalisation is needed); per-item correctness for paired tests, the spread of predictions
    so an all-"no" model is flagged, and the always-the-commonest-label baseline beside it."""
    predicted = [
        LABELS[rank_options(runner, build_prompt(item, demonstrations), [f" {label}" for label in LABELS])]
        for item in items
    ]
    counts = Counter(item.answer for item in items)
    return {
        "correct": [choice == item.answer for choice, item in zip(predicted, items, strict=True)],
        "shots": len(demonstrations),
        "predicted": {label: predicted.count(label) for label in LABELS},
        "chance": round(1 / len(LABELS), 4),
        "majority": round(max(counts.values()) / len(items), 4) if items else 0.0,
        "majority_label": counts.most_common(1)[0][0] if items else None,
        **collapse(predicted),
    }
