"""Wilson score intervals: honest bounds for a proportion measured on a few hundred documents.

The normal approximation collapses to a zero-width interval at 0 or 1 and leaves [0, 1] near
them; a sample with 3 misses in 300 tokens must still say how bad recall could be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Rate:
    """``hits`` of ``total``, with its point estimate and 95% Wilson interval (None when total is 0)."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.hits, self.total)

    def as_dict(self) -> dict[str, float | int | None]:
        bounds = self.interval
        value = self.value
        return {
            "hits": self.hits,
            "total": self.total,
            "value": None if value is None else round(value, 6),
            "low": None if bounds is None else round(bounds[0], 6),
            "high": None if bounds is None else round(bounds[1], 6),
        }


def wilson(hits: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``hits / total``; None when nothing was measured."""
    if hits < 0 or total < 0 or hits > total:
        raise ValueError("hits must be between 0 and total")
    if total == 0:
        return None
    share = hits / total
    z2 = z * z
    centre = (share + z2 / (2 * total)) / (1 + z2 / total)
    spread = z * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    low = 0.0 if hits == 0 else max(0.0, centre - spread)
    high = 1.0 if hits == total else min(1.0, centre + spread)  # exact at the ends, not 0.9999999
    return low, high
