"""Detection over the worker pool (:mod:`deid.workers`), for corpora where one core is not enough.

Each worker builds its own ``PhiDetector`` once (spawn-safe: only the config crosses the process
boundary) and then receives batches of texts; spans come back in input order. The parent never
imports the engine unless it detects in-process, so a pool costs it nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from deid.config import DeidConfig
from deid.detection.known_phi import KnownPhi
from deid.detection.spans import DetectedSpan
from deid.workers import BATCH_ITEMS, OrderedPool

if TYPE_CHECKING:
    from deid.detection.engine import PhiDetector

Text = tuple[str, Sequence[KnownPhi]]


def build_detector(config: DeidConfig) -> PhiDetector:
    """A worker's detector; the engine is imported here, in the worker, not by the parent."""
    from deid.detection.engine import PhiDetector

    return PhiDetector(config)


def detect_batch(detector: PhiDetector, batch: list[Text]) -> list[list[DetectedSpan]]:
    """The pool's task: spans for each ``(text, known_phi)`` of a batch."""
    return detector.detect_many([text for text, _ in batch], [known for _, known in batch])


def detector_pool(
    config: DeidConfig, workers: int, *, batch_items: int = BATCH_ITEMS, detector: PhiDetector | None = None
) -> OrderedPool[DeidConfig, PhiDetector]:
    """A pool of ``workers`` detectors (with one worker: ``detector`` if given, in this process)."""
    return OrderedPool(workers, build_detector, config, local=detector, batch_items=batch_items)


def detect_stream(
    items: Iterable[Text],
    config: DeidConfig,
    workers: int | None = None,
    batch_items: int = BATCH_ITEMS,
    detector: PhiDetector | None = None,
) -> Iterator[list[DetectedSpan]]:
    """Spans for each ``(text, known_phi)`` in order; in this process (reusing ``detector`` if
    given) when ``workers`` is 1, else over a pool of ``workers`` processes."""
    with detector_pool(config, workers or config.workers, batch_items=batch_items, detector=detector) as pool:
        yield from pool.map(detect_batch, items)


def detect_parallel(texts: Iterable[str], workers: int, config: DeidConfig | None = None) -> list[list[DetectedSpan]]:
    """``PhiDetector.detect`` for every text, spread over ``workers`` processes."""
    return list(detect_stream(((text, ()) for text in texts), config or DeidConfig(), workers))
