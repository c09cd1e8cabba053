"""Held-out MedQuAD answers: how likely the model finds the reference answer, and ROUGE-L of its own."""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from appliance.errors import InputError
from appliance.evaluate.rouge import rouge_l
from appliance.export.runners import ModelRunner, negative_log_likelihood


@dataclass(frozen=True)
class QAItem:
    question: str
    answer: str


def shipped_heldout() -> Path:
    return Path(str(resources.files("appliance.data") / "benchmarks" / "medquad-heldout.jsonl.gz"))


def load_medquad(path: Path, limit: int) -> list[QAItem]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        items = [QAItem(str(row["question"]), str(row["answer"])) for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"cannot read MedQuAD-layout file {path} (JSONL with question and answer)") from None
    return items[:limit]


def prompt_for(item: QAItem) -> str:
    return f"Question: {item.question}\nAnswer:"


def evaluate(runner: ModelRunner, items: list[QAItem], max_new_tokens: int) -> dict[str, float | int]:
    total_nll, total_tokens, rouge = 0.0, 0, 0.0
    for item in items:
        prompt = runner.tokenize(prompt_for(item))
        answer = runner.tokenize(" " + item.answer, add_special=False)
        ids = (prompt + answer)[: runner.context_length]
        nll, count = negative_log_likelihood(runner, ids, start=len(prompt))
        total_nll, total_tokens = total_nll + nll, total_tokens + count
        generated = runner.detokenize(runner.greedy(prompt[-(runner.context_length - max_new_tokens) :], max_new_tokens))
        rouge += rouge_l(generated, item.answer)
    return {
        "answer_perplexity": round(math.exp(total_nll / max(total_tokens, 1)), 4),
        "rouge_l": round(rouge / len(items), 4) if items else 0.0,
        "questions": len(items),
    }
