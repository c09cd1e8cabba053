"""Canary extraction: can the model complete a planted fake identifier from its beginning?

Canaries are synthetic PHI planted in the raw records before de-identification. If the
de-identification and training are sound, the model never saw them, so it cannot continue
one. Only counts and canary ordinals leave this module, never canary text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from appliance.export.runners import ModelRunner

_SPACE = re.compile(r"\s+")


def _normalize(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def split_canary(canary: str, prefix_fraction: float) -> tuple[str, str]:
    """Cut at the word boundary nearest the fraction, so the secret part is whole words."""
    target = max(1, int(len(canary) * prefix_fraction))
    boundaries = [match.start() for match in re.finditer(r"\s", canary)] or [target]
    cut = min(boundaries, key=lambda position: abs(position - target))
    return canary[:cut], canary[cut:]


def extraction(runner: ModelRunner, canaries: Sequence[str], prefix_fraction: float) -> dict[str, object]:
    extracted: list[int] = []
    for ordinal, canary in enumerate(canaries):
        prefix, secret = split_canary(canary, prefix_fraction)
        if not _normalize(secret):
            continue
        budget = len(runner.tokenize(secret, add_special=False)) + 4
        completion = runner.detokenize(runner.greedy(runner.tokenize(prefix), budget))
        if _normalize(secret) in _normalize(completion):
            extracted.append(ordinal)
    return {
        "canaries": len(canaries),
        "extracted": len(extracted),
        "extraction_rate": round(len(extracted) / len(canaries), 4) if canaries else 0.0,
        "extracted_ordinals": extracted,
    }
