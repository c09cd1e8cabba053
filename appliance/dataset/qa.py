"""Import question/answer and dialogue files (JSONL, optionally gzipped) as chat examples.

Accepted line layouts: MedQuAD (``question``, ``answer``, ``focus``, ...), generic pairs
(``question``/``answer``, ``prompt``/``response``, ``instruction``/``output`` with an
optional ``input``), and dialogues (``messages``: a list of ``{role, content}``).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.errors import InputError

PAIR_KEYS = (("question", "answer"), ("prompt", "response"), ("instruction", "output"))
ROLES = {"system", "user", "assistant"}


@dataclass
class Dialogue:
    """A conversation whose assistant turns are the learning targets."""

    group: str
    messages: list[dict[str, str]]
    source: str


def read_qa_file(path: Path) -> list[Dialogue]:
    if not path.is_file():
        raise InputError(f"Q&A file not found: {path}")
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"cannot read Q&A file {path}: {type(error).__name__}") from None
    dialogues: list[Dialogue] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise InputError(f"malformed JSON in {path} at line {number}") from None
        messages = _messages(data)
        if messages is None:
            raise InputError(
                f"{path} line {number}: expected question/answer, prompt/response, instruction/output or messages"
            )
        if messages:
            topic = data.get("focus") or data.get("id") or number
            dialogues.append(Dialogue(group=f"qa:{path.name}:{topic}", messages=messages, source=path.name))
    return dialogues


def _messages(data: Any) -> list[dict[str, str]] | None:
    """The chat turns of one line; ``[]`` for an empty pair, ``None`` for an unknown layout."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("messages"), list):
        turns = [
            {"role": str(m.get("role")), "content": str(m.get("content") or "")}
            for m in data["messages"]
            if isinstance(m, dict) and m.get("role") in ROLES
        ]
        return turns if any(t["role"] == "assistant" and t["content"].strip() for t in turns) else []
    for ask, reply in PAIR_KEYS:
        if ask in data and reply in data:
            question = str(data.get(ask) or "").strip()
            if ask == "instruction" and str(data.get("input") or "").strip():
                question = f"{question}\n\n{str(data['input']).strip()}"
            answer = str(data.get(reply) or "").strip()
            if not question or not answer:
                return []
            return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return None
