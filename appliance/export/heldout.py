"""Read held-out de-identified text for perplexity: a .txt/.md file, a JSONL file, or a folder of them."""

from __future__ import annotations

import json
from pathlib import Path

from deid.errors import InputError

_TEXT_FIELDS = ("text", "answer", "content")


def _from_jsonl(path: Path) -> list[str]:
    texts: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InputError(f"{path.name}: line {number} is not valid JSON") from None
        if not isinstance(record, dict):
            continue
        value = next((record.get(key) for key in _TEXT_FIELDS if record.get(key)), None)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(record.get("messages"), list):
            # A training-set chat example: its turns, in order, are the held-out text.
            turns = [turn.get("content") for turn in record["messages"] if isinstance(turn, dict)]
            texts.append("\n".join(turn for turn in turns if isinstance(turn, str)))
    return texts


def read_texts(path: Path) -> list[str]:
    """Non-empty documents under ``path`` in a stable order."""
    if not path.exists():
        raise InputError(f"held-out text not found: {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    texts: list[str] = []
    for file in files:
        try:
            if file.suffix == ".jsonl":
                texts.extend(_from_jsonl(file))
            elif file.suffix in (".txt", ".md", ".text"):
                texts.append(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"held-out file is not UTF-8 text: {file.name}") from None
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise InputError(f"no held-out text found in {path} (.txt, .md, or .jsonl with a 'text' field or chat 'messages')")
    return texts
