"""Four- and five-option medical exam questions: MMLU's medical subjects (shipped), MedQA and MedMCQA files.

Scoring is by option likelihood, not by asking for a letter: the prompt is the question alone
("Question: ...\\nAnswer:") and each option's text is scored as its continuation. The score of
an option is the mean log-probability per token of its text (length normalisation): a summed
log-likelihood favours short options, since every extra token can only lower it, so
"Ureter" would beat "the ureter and the bladder" for no medical reason. Letter scoring
("Answer: B") was measured first on the embedded 135M model and collapses onto one letter,
which measures letter bias, not knowledge; option text gives every model, base or tuned, the
same task. The options share the question's prompt, so llama.cpp's KV cache computes the
question once per item and only each option's few tokens after it.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from appliance.evaluate.choices import fit_to_context
from appliance.export.runners import ModelRunner, log_softmax
from deid.errors import InputError

LETTERS = "ABCDE"
MMLU_SUBJECTS = (
    "anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics", "professional_medicine",
)
# A model that gives one option position for more than this share of items is flagged: its
# accuracy then measures how often that position is right, not what the model knows.
COLLAPSE_SHARE = 0.8


@dataclass(frozen=True)
class MultipleChoiceItem:
    question: str
    options: dict[str, str]
    answer: str
    subject: str = ""


def shipped_mmlu() -> Path:
    return Path(str(resources.files("appliance.data") / "benchmarks" / "mmlu-medical-test.jsonl.gz"))


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputError(f"multiple-choice file not found: {path}")
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile):
        raise InputError(f"cannot read multiple-choice file {path.name} (UTF-8 JSONL, optionally gzipped)") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f"{path.name}: line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise InputError(f"{path.name}: line {number} is not a JSON object")
        rows.append((number, row))
    if not rows:
        raise InputError(f"no questions in {path.name}")
    return rows


def _item(path: Path, number: int, question: Any, options: dict[str, str], answer: str, subject: str) -> MultipleChoiceItem:
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"{path.name}: line {number} has no question text")
    if answer not in options:
        raise InputError(f"{path.name}: line {number} names answer {answer!r}, which is not one of its options")
    if len(options) < 2 or any(not text.strip() for text in options.values()):
        raise InputError(f"{path.name}: line {number} needs at least two non-empty options")
    return MultipleChoiceItem(question.strip(), options, answer, subject)


def load_medqa(path: Path) -> list[MultipleChoiceItem]:
    """MedQA's JSONL layout: ``question``, ``options`` {letter: text}, ``answer_idx`` (a letter)."""
    items = []
    for number, row in _rows(path):
        try:
            options = {str(key): str(value) for key, value in dict(row["options"]).items()}
            answer = str(row["answer_idx"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path.name}: line {number} is not in the MedQA layout (question, options, answer_idx)") from None
        items.append(_item(path, number, row.get("question"), options, answer, str(row.get("meta_info") or "")))
    return items


def _medmcqa_offset(path: Path, rows: list[tuple[int, dict[str, Any]]]) -> int:
    """MedMCQA's ``cop`` is 1-4 in the authors' release and 0-3 in the common re-packaging.

    A file that holds a 0 is zero-based and one that holds a 4 is one-based; a file with
    neither (or both) cannot be read safely, and a wrong guess would shift every answer.
    """
    values = {row.get("cop") for _, row in rows}
    if 0 in values and 4 not in values:
        return 0
    if 4 in values and 0 not in values:
        return 1
    raise InputError(
        f"{path.name}: cannot tell whether 'cop' counts from 0 or from 1 (values seen: "
        f"{sorted(str(v) for v in values)}); add questions whose answer is the first or the last option"
    )


def load_medmcqa(path: Path) -> list[MultipleChoiceItem]:
    """MedMCQA's JSONL layout: ``question``, ``opa``..``opd``, ``cop`` (the correct option's number)."""
    rows = _rows(path)
    for number, row in rows:
        if not isinstance(row.get("cop"), int) or not all(isinstance(row.get(k), str) for k in ("opa", "opb", "opc", "opd")):
            raise InputError(f"{path.name}: line {number} is not in the MedMCQA layout (question, opa..opd, cop)")
    offset = _medmcqa_offset(path, rows)
    items = []
    for number, row in rows:
        options = {letter: str(row[key]) for letter, key in zip("ABCD", ("opa", "opb", "opc", "opd"), strict=True)}
        index = int(row["cop"]) - offset
        answer = LETTERS[index] if 0 <= index < 4 else "?"
        items.append(_item(path, number, row.get("question"), options, answer, str(row.get("subject_name") or "")))
    return items


def load_mmlu(path: Path | None = None) -> list[MultipleChoiceItem]:
    """The shipped MMLU test split of the six medical subjects, in a fixed hash order within each subject."""
    source = path or shipped_mmlu()
    items = []
    for number, row in _rows(source):
        try:
            options = {str(key): str(value) for key, value in dict(row["options"]).items()}
            items.append(_item(source, number, row["question"], options, str(row["answer"]), str(row["subject"])))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{source.name}: line {number} is not an MMLU row (subject, question, options, answer)") from None
    return items


def stratified(items: list[MultipleChoiceItem], limit: int | None) -> list[MultipleChoiceItem]:
    """``limit`` items taken round-robin across subjects, so a quick run covers every subject evenly.

    Within a subject the file order is kept, so a larger limit is a superset of a smaller one.
    """
    if not limit or limit >= len(items):
        return list(items)
    by_subject: dict[str, list[MultipleChoiceItem]] = {}
    for item in items:
        by_subject.setdefault(item.subject, []).append(item)
    queues = list(by_subject.values())
    chosen: list[MultipleChoiceItem] = []
    depth = 0
    while len(chosen) < limit:
        for queue in queues:
            if depth < len(queue) and len(chosen) < limit:
                chosen.append(queue[depth])
        depth += 1
    return chosen


def build_prompt(item: MultipleChoiceItem) -> str:
    return f"Question: {item.question}\nAnswer:"


def option_score(runner: ModelRunner, prompt: list[int], option: str) -> float:
    """Mean log-probability per token of ``option`` after ``prompt`` (see the module docstring for why)."""
    continuation = runner.tokenize(" " + option.strip(), add_special=False)
    ids = fit_to_context(prompt + continuation, runner, 0)
    start = len(ids) - len(continuation)
    rows = log_softmax(runner.logits(ids)[start - 1 : len(ids) - 1])
    return float(np.mean(rows[np.arange(len(continuation)), continuation]))


def predict(runner: ModelRunner, item: MultipleChoiceItem) -> str:
    prompt = runner.tokenize(build_prompt(item))
    letters = list(item.options)
    scores = [option_score(runner, prompt, item.options[letter]) for letter in letters]
    return letters[int(np.argmax(scores))]


def baselines(items: list[MultipleChoiceItem]) -> dict[str, float]:
    """What guessing scores: uniform chance, and always answering the most common correct letter."""
    counts = Counter(item.answer for item in items)
    return {
        "chance": round(float(np.mean([1 / len(item.options) for item in items])), 4) if items else 0.0,
        "majority": round(max(counts.values()) / len(items), 4) if items else 0.0,
    }


def collapse(predicted: list[str]) -> dict[str, Any]:
    """The most given answer and its share; ``collapsed`` when it exceeds :data:`COLLAPSE_SHARE`."""
    if not predicted:
        return {"most_given": None, "most_given_share": 0.0, "collapsed": False}
    label, count = Counter(predicted).most_common(1)[0]
    share = count / len(predicted)
    return {"most_given": label, "most_given_share": round(share, 4), "collapsed": share > COLLAPSE_SHARE}


def evaluate(runner: ModelRunner, items: list[MultipleChoiceItem]) -> dict[str, Any]:
    """Per-item correctness (for paired tests) with the predictions' spread and the baselines."""
    predicted = [predict(runner, item) for item in items]
    correct = [guess == item.answer for guess, item in zip(predicted, items, strict=True)]
    per_subject: dict[str, list[bool]] = {}
    for item, right in zip(items, correct, strict=True):
        per_subject.setdefault(item.subject or "all", []).append(right)
    return {
        "correct": correct,
        "predicted": dict(Counter(predicted)),
        "subjects": {name: {"questions": len(v), "correct": sum(v)} for name, v in sorted(per_subject.items())},
        **baselines(items),
        **collapse(predicted),
    }
