"""The one worker pool of de-identification: ``deid run`` and ``deid detect`` both go through it.

A pool of N processes, each of which builds its heavy state (a detector, a reader context) once
from a small picklable spec in its initializer, then receives batches and sends results back;
the caller gets the results in input order with at most ``window`` batches in flight, so memory
is bounded by that window, not by the input. With one worker nothing is forked: the same batches
run in this process, on state the caller may already hold.

Where the platform has it, workers are forked from a ``forkserver`` that has imported Presidio,
spaCy and the run once, so N workers start in about the time of one instead of each re-importing
them; elsewhere plain ``spawn`` is used. Workers read PHI, so each installs the egress guard
(:mod:`deid.egress`) before anything else: an audit hook of the parent does not reach a process
the fork server made.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, Generic, TypeVar

from deid.egress import EgressMode, enforce_offline_environment, install_egress_guard

# Imported once by the fork server, before it forks any worker: the heavy part of a worker's start.
PRELOAD_MODULES = ["deid.detection.engine", "deid.run.runner"]
BATCH_ITEMS = 16

Spec = TypeVar("Spec")
State = TypeVar("State")
Item = TypeVar("Item")
Result = TypeVar("Result")

# Per-process state of a worker, set once by the initializer (the executor's only hook for
# that); never used in the parent.
_worker_state: list[Any] = []


def worker_context() -> BaseContext:
    """The start method for workers: a fork server that has imported the engine and the run
    once, where the platform has one; plain ``spawn`` elsewhere. Every pool of the process shares
    the one fork server, so all of them ask for the same preload."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD_MODULES)
    return context


def guard_worker() -> None:
    """First thing in every worker: refuse egress, whatever the worker goes on to load."""
    enforce_offline_environment()
    install_egress_guard(EgressMode.strict)


def _initialize(setup: Callable[[Any], Any], spec: Any) -> None:
    guard_worker()
    _worker_state[:] = [setup(spec)]


def _run_batch(task: Callable[[Any, list[Any]], list[Any]], batch: list[Any]) -> list[Any]:
    return task(_worker_state[0], batch)


class OrderedPool(Generic[Spec, State]):
    """``workers`` processes, each holding ``setup(spec)``; use as a context manager.

    ``setup``, ``spec`` and every task must be picklable (module-level functions, dataclasses).
    ``local`` is state the caller already built from ``spec`` for the one-worker case (the demo
    and tests hold a detector), so it is not built twice.
    """

    def __init__(
        self,
        workers: int,
        setup: Callable[[Spec], State],
        spec: Spec,
        *,
        local: State | None = None,
        batch_items: int = BATCH_ITEMS,
        window: int | None = None,
    ) -> None:
        self.workers = workers
        self.batch_items = batch_items
        self.window = window or 2 * workers
        self._setup = setup
        self._spec = spec
        self._local = local
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> OrderedPool[Spec, State]:
        if self.workers > 1:
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=worker_context(), initializer=_initialize, initargs=(self._setup, self._spec)
            )
        elif self._local is None:
            self._local = self._setup(self._spec)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def map(self, task: Callable[[State, list[Item]], list[Result]], items: Iterable[Item]) -> Iterator[Result]:
        """``task(state, batch)`` over ``items`` in batches; one result per item, in input order.
        ``items`` is read lazily, at most ``window`` batches ahead of what was yielded."""
        batches = _batched(items, self.batch_items)
        if self._executor is None:
            if self._local is None:
                raise RuntimeError("OrderedPool must be entered before use")
            for batch in batches:
                yield from task(self._local, batch)
            return
        pending: deque[Future[list[Result]]] = deque()
        for batch in batches:
            pending.append(self._executor.submit(_run_batch, task, batch))
            while len(pending) >= self.window:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
