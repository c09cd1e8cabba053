"""Intervals and paired tests, so a report says how sure a number is and whether two models differ.

Small benchmark subsets on small models give scores whose noise is as large as the effect of
fine-tuning; a bare 0.31 against 0.29 invites a wrong decision. Accuracies get Wilson score
intervals (they stay inside [0, 1] and behave at 0 and n correct, unlike the normal
approximation); means of per-item values (ROUGE-L) and perplexities get percentile
bootstrap intervals over items. Base against fine-tuned is compared on the same items: the
exact McNemar test for accuracies (only the discordant items carry information) and a paired
bootstrap of the mean difference for ROUGE-L and answer log-likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 2000
SEED = 0


def wilson(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when nothing was measured."""
    if total <= 0:
        return 0.0, 1.0
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _resamples(count: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, count, size=(samples, count))


def bootstrap_mean(values: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% interval of the mean of per-item values."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) == 0:
        return 0.0, 0.0
    means = data[_resamples(len(data), samples, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_perplexity(
    nll: Sequence[float], tokens: Sequence[int], samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Percentile 95% interval of a token-weighted perplexity, resampling whole items (answers).

    Items, not tokens, are the unit: the tokens of one answer are not independent draws.
    """
    losses, counts = np.asarray(nll, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    if len(losses) == 0:
        return 0.0, 0.0
    picks = _resamples(len(losses), samples, seed)
    values = np.exp(losses[picks].sum(axis=1) / np.maximum(counts[picks].sum(axis=1), 1.0))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def mcnemar_exact(first: Sequence[bool], second: Sequence[bool]) -> dict[str, float | int]:
    """Two-sided exact McNemar test on paired correctness: a binomial test on the discordant items.

    ``only_first``/``only_second`` count items that one model got right and the other wrong.
    """
    if len(first) != len(second):
        raise ValueError("paired test needs the same items for both models")
    only_first = sum(1 for a, b in zip(first, second, strict=True) if a and not b)
    only_second = sum(1 for a, b in zip(first, second, strict=True) if b and not a)
    discordant = only_first + only_second
    if discordant == 0:
        p_value = 1.0
    else:
        smaller = min(only_first, only_second)
        tail = sum(math.comb(discordant, k) for k in range(smaller + 1)) / 2**discordant
        p_value = min(1.0, 2 * tail)
    return {"only_first": only_first, "only_second": only_second, "p_value": round(p_value, 6)}


def paired_bootstrap(
    first: Sequence[float], second: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> dict[str, float]:
    """Mean of ``second - first`` over the same items, its 95% bootstrap interval and a two-sided p-value.

    The p-value is twice the share of resampled mean differences on the far side of zero
    (floored at one resample), the usual percentile-bootstrap test of "no difference".
    """
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError("paired test needs the same items for both models")
    if len(a) == 0:
        return {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    differences = b - a
    means = differences[_resamples(len(differences), samples, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    if not differences.any():
        p_value = 1.0
    else:
        below, above = float(np.mean(means <= 0)), float(np.mean(means >= 0))
        p_value = min(1.0, 2 * max(min(below, above), 1 / samples))
    return {
        "difference": round(float(differences.mean()), 6),
        "ci_low": round(float(low), 6),
        "ci_high": round(float(high), 6),
        "p_value": round(p_value, 6),
    }
