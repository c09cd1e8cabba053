"""Detection over worker processes, for corpora where one core is not enough.

Each worker builds its own ``PhiDetector`` once, in the pool initializer (spawn-safe: only the
config crosses the process boundary), and then receives chunks of texts; results come back in
input order. Chunks keep the per-task overhead small next to the work done per chunk.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.known_phi import KnownPhi
from deid.detection.spans import DetectedSpan

Chunk = list[tuple[str, Sequence[KnownPhi]]]

# Per-process state of a pool worker, set once by the initializer; never used in the parent.
_worker_detector: list[PhiDetector] = []


def _initialize(config: DeidConfig) -> None:
    _worker_detector.append(PhiDetector(config))


def _detect_chunk(chunk: Chunk) -> list[list[DetectedSpan]]:
    detector = _worker_detector[0]
    return detector.detect_many([text for text, _ in chunk], [known for _, known in chunk])


def chunked(items: Iterable[tuple[str, Sequence[KnownPhi]]], size: int) -> Iterator[Chunk]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def detect_stream(
    items: Iterable[tuple[str, Sequence[KnownPhi]]],
    config: DeidConfig,
    workers: int | None = None,
    chunk_size: int = 16,
    detector: PhiDetector | None = None,
) -> Iterator[list[DetectedSpan]]:
    """Spans for each ``(text, known_phi)`` in order; in this process (reusing ``detector`` if
    given) when ``workers`` is 1, else over a pool of ``workers`` spawned processes."""
    workers = workers or config.workers
    if workers <= 1:
        detector = detector or PhiDetector(config)
        for chunk in chunked(items, chunk_size):
            yield from detector.detect_many([text for text, _ in chunk], [known for _, known in chunk])
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_initialize, initargs=(config,)) as pool:
        for spans in pool.imap(_detect_chunk, chunked(items, chunk_size)):
            yield from spans


def detect_parallel(texts: Iterable[str], workers: int, config: DeidConfig | None = None) -> list[list[DetectedSpan]]:
    """``PhiDetector.detect`` for every text, spread over ``workers`` processes."""
    return list(detect_stream(((text, ()) for text in texts), config or DeidConfig(), workers))
