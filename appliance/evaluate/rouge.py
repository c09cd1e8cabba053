"""ROUGE-L (longest common subsequence F1) over lower-cased word tokens."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def lcs_length(first: list[str], second: list[str]) -> int:
    """Classic dynamic programme, one row at a time so memory stays linear."""
    if not first or not second:
        return 0
    previous = [0] * (len(second) + 1)
    for item in first:
        current = [0]
        for index, other in enumerate(second, start=1):
            current.append(previous[index - 1] + 1 if item == other else max(previous[index], current[index - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    produced, expected = words(candidate), words(reference)
    common = lcs_length(produced, expected)
    if common == 0:
        return 0.0
    precision, recall = common / len(produced), common / len(expected)
    return 2 * precision * recall / (precision + recall)
