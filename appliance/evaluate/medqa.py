"""Multiple-choice questions in the MedQA JSONL layout: ``question``, ``options`` {letter: text}, ``answer_idx``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import InputError
from appliance.evaluate.choices import rank_options
from appliance.export.runners import ModelRunner


@dataclass(frozen=True)
class MultipleChoiceItem:
    question: str
    options: dict[str, str]
    answer: str


def load_medqa(path: Path, limit: int | None) -> list[MultipleChoiceItem]:
    if not path.is_file():
        raise InputError(f"multiple-choice file not found: {path}")
    items: list[MultipleChoiceItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            options = {str(key): str(value) for key, value in dict(row["options"]).items()}
            answer = str(row["answer_idx"])
            question = str(row["question"])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path.name}: line {number} is not in the MedQA layout (question, options, answer_idx)") from None
        if answer not in options:
            raise InputError(f"{path.name}: line {number} has answer_idx {answer!r} that is not an option")
        items.append(MultipleChoiceItem(question, options, answer))
        if limit and len(items) >= limit:
            break
    if not items:
        raise InputError(f"no questions in {path.name}")
    return items


def build_prompt(item: MultipleChoiceItem) -> str:
    """A raw completion prompt, not the chat template: options are ranked by likelihood, as for
    PubMedQA (see ``pubmedqa.build_prompt`` for why and the measurement behind it)."""
    lines = "".join(f"{letter}. {text}\n" for letter, text in item.options.items())
    return f"Question: {item.question}\n{lines}Answer with the letter of the correct option.\nAnswer:"


def evaluate(runner: ModelRunner, items: list[MultipleChoiceItem]) -> dict[str, float | int]:
    correct = 0
    for item in items:
        letters = list(item.options)
        correct += letters[rank_options(runner, build_prompt(item), [f" {letter}" for letter in letters])] == item.answer
    return {"accuracy": round(correct / len(items), 4), "questions": len(items)}
