"""Detection over worker processes, for corpora where one core is not enough.

Each worker builds its own ``PhiDetector`` once, in the pool initializer (spawn-safe: only the
config crosses the process boundary), and then receives chunks of texts; results come back in
input order. Where the platform has it, workers are forked from a ``forkserver`` that has
imported Presidio and spaCy once, so N workers start in about the time of one instead of each
re-importing them; elsewhere plain ``spawn`` is used. The parent never imports the engine
unless it detects in-process, so a pool costs it nothing.

Workers read PHI, so each installs the egress guard (:mod:`deid.egress`) before anything else
in its initializer: an audit hook of the parent does not reach a process the fork server made.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from multiprocessing.context import BaseContext
from multiprocessing.pool import Pool
from types import TracebackType
from typing import TYPE_CHECKING

from deid.config import DeidConfig
from deid.detection.known_phi import KnownPhi
from deid.detection.spans import DetectedSpan
from deid.egress import EgressMode, enforce_offline_environment, install_egress_guard

if TYPE_CHECKING:
    from deid.detection.engine import PhiDetector

Chunk = list[tuple[str, Sequence[KnownPhi]]]
# Imported once by the fork server, before it forks any worker: the heavy part of a worker's start.
PRELOAD_MODULES = ["deid.detection.engine", "deid.pipeline"]

# Per-process state of a pool worker, set once by the initializer; never used in the parent.
_worker_detector: list[PhiDetector] = []


def worker_context() -> BaseContext:
    """The start method for detection workers: a fork server that has imported Presidio, spaCy and
    the pipeline once, where the platform has one; plain ``spawn`` elsewhere. Every pool of the
    process shares the one fork server, so all of them ask for the same preload."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD_MODULES)
    return context


def guard_worker() -> None:
    """First thing in every worker initializer: refuse egress, whatever the worker goes on to load."""
    enforce_offline_environment()
    install_egress_guard(EgressMode.strict)


def _initialize(config: DeidConfig) -> None:
    guard_worker()
    from deid.detection.engine import PhiDetector

    _worker_detector.append(PhiDetector(config))


def _detect_chunk(chunk: Chunk) -> list[list[DetectedSpan]]:
    return _worker_detector[0].detect_many([text for text, _ in chunk], [known for _, known in chunk])


def chunked(items: Iterable[tuple[str, Sequence[KnownPhi]]], size: int) -> Iterator[Chunk]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class DetectorPool:
    """A pool of ``workers`` processes, each holding one ``PhiDetector``; use as a context manager."""

    def __init__(self, config: DeidConfig, workers: int, chunk_size: int = 16) -> None:
        self.config = config
        self.workers = workers
        self.chunk_size = chunk_size
        self._pool: Pool | None = None

    def __enter__(self) -> DetectorPool:
        self._pool = worker_context().Pool(self.workers, initializer=_initialize, initargs=(self.config,))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.terminate() if error else self._pool.close()
            self._pool.join()
            self._pool = None

    def detect_stream(self, items: Iterable[tuple[str, Sequence[KnownPhi]]]) -> Iterator[list[DetectedSpan]]:
        """Spans for each ``(text, known_phi)``, in input order, memory bounded by the pool's look-ahead."""
        if self._pool is None:
            raise RuntimeError("DetectorPool must be entered before use")
        for spans in self._pool.imap(_detect_chunk, chunked(items, self.chunk_size)):
            yield from spans


def detect_stream(
    items: Iterable[tuple[str, Sequence[KnownPhi]]],
    config: DeidConfig,
    workers: int | None = None,
    chunk_size: int = 16,
    detector: PhiDetector | None = None,
) -> Iterator[list[DetectedSpan]]:
    """Spans for each ``(text, known_phi)`` in order; in this process (reusing ``detector`` if
    given) when ``workers`` is 1, else over a pool of ``workers`` processes."""
    workers = workers or config.workers
    if workers <= 1:
        if detector is None:
            from deid.detection.engine import PhiDetector

            detector = PhiDetector(config)
        for chunk in chunked(items, chunk_size):
            yield from detector.detect_many([text for text, _ in chunk], [known for _, known in chunk])
        return
    with DetectorPool(config, workers, chunk_size) as pool:
        yield from pool.detect_stream(items)


def detect_parallel(texts: Iterable[str], workers: int, config: DeidConfig | None = None) -> list[list[DetectedSpan]]:
    """``PhiDetector.detect`` for every text, spread over ``workers`` processes."""
    return list(detect_stream(((text, ()) for text in texts), config or DeidConfig(), workers))
