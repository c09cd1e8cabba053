"""Turn Presidio's overlapping results into the sorted, non-overlapping spans callers need.

Overlapping or touching results of one PHI item ("Dr." name span and a dictionary hit on the
surname, a date and a year inside it) are united; the merged span takes the entity type of its
highest-scoring part, so a strong label wins over a weak guess.
"""

from __future__ import annotations

from collections.abc import Iterable

from deid.detection.entities import NAME_ENTITIES
from deid.detection.presidio_api import RecognizerResult
from deid.detection.spans import DetectedSpan

# Parts of one name found separately ("JOHN" + "WHITAKER") become one span when only this separates them.
NAME_JOINERS = frozenset({" ", ", ", ". ", "  ", "\t"})


def merge_results(results: Iterable[RecognizerResult], threshold: float, text: str) -> list[DetectedSpan]:
    kept = sorted((r for r in results if r.score >= threshold and r.end > r.start), key=lambda r: (r.start, -r.end))
    merged: list[DetectedSpan] = []
    for result in kept:
        if merged and (result.start < merged[-1].end or _same_name(merged[-1], result, text)):
            last = merged[-1]
            best_type, best_score = (
                (result.entity_type, result.score) if result.score > last.score else (last.entity_type, last.score)
            )
            merged[-1] = DetectedSpan(last.start, max(last.end, result.end), best_type, best_score)
        else:
            merged.append(DetectedSpan(result.start, result.end, result.entity_type, result.score))
    return merged


def _same_name(last: DetectedSpan, result: RecognizerResult, text: str) -> bool:
    return (
        last.entity_type in NAME_ENTITIES
        and result.entity_type in NAME_ENTITIES
        and text[last.end : result.start] in NAME_JOINERS
    )
