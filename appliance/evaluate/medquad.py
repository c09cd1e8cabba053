"""Held-out MedQuAD answers: how likely the model finds the reference answer, and ROUGE-L of its own.

Questions are put through the model's own chat template when it has one: an instruct model
asked with a bare "Question: ...\nAnswer:" often ends its turn at once, which scores ROUGE-L 0
for a model that answers well when asked the way it was trained. Base models, with no
template, get that raw prompt. The reference answer is scored as the assistant's reply to the
same prompt, so answer perplexity and ROUGE-L measure the same situation.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from appliance.evaluate.rouge import rouge_l
from appliance.export.runners import (
    ModelRunner,
    negative_log_likelihood,
    question_ids,
    strip_end,
)
from deid.errors import InputError


@dataclass(frozen=True)
class QAItem:
    question: str
    answer: str


def shipped_heldout() -> Path:
    return Path(str(resources.files("appliance.data") / "benchmarks" / "medquad-heldout.jsonl.gz"))


def load_medquad(path: Path, limit: int | None) -> list[QAItem]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        items = [QAItem(str(row["question"]), str(row["answer"])) for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"cannot read MedQuAD-layout file {path} (JSONL with question and answer)") from None
    return items[:limit]


def evaluate(runner: ModelRunner, items: list[QAItem], max_new_tokens: int) -> dict[str, Any]:
    """Per-item answer log-loss (summed over its tokens) and ROUGE-L, kept apart for intervals and paired tests."""
    losses: list[float] = []
    tokens: list[int] = []
    rouge: list[float] = []
    for item in items:
        prompt = question_ids(runner, item.question)
        # A raw prompt ends at "Answer:", so the answer follows a space; a chat turn starts on its own line.
        separator = "" if runner.chat_template else " "
        answer = runner.tokenize(separator + item.answer, add_special=False)
        ids = (prompt + answer)[: runner.context_length]
        nll, count = negative_log_likelihood(runner, ids, start=len(prompt))
        losses.append(nll)
        tokens.append(count)
        produced = runner.greedy(prompt[-(runner.context_length - max_new_tokens) :], max_new_tokens)
        rouge.append(rouge_l(runner.detokenize(strip_end(runner, produced)), item.answer))
    return {"nll": losses, "tokens": tokens, "rouge_l": rouge}


def answer_perplexity(losses: list[float], tokens: list[int]) -> float:
    return math.exp(sum(losses) / max(sum(tokens), 1))
