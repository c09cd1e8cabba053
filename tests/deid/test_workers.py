"""The one worker pool: results in input order, input read a bounded window ahead, state built once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from deid.workers import OrderedPool


def _setup(tag: str) -> tuple[str, int]:
    """A worker's state: who built it, so a test can count the builds."""
    return tag, os.getpid()


def _slow_first(state: tuple[str, int], batch: list[int]) -> list[tuple[int, int]]:
    """Early items take longest, so a pool that returned results as they finish would reorder them."""
    time.sleep(0.05 * max(0, 4 - batch[0]))
    return [(item, state[1]) for item in batch]


def test_results_keep_input_order_across_workers() -> None:
    with OrderedPool(2, _setup, "w", batch_items=1) as pool:
        results = list(pool.map(_slow_first, range(12)))
    assert [item for item, _ in results] == list(range(12))
    workers = {pid for _, pid in results}
    assert os.getpid() not in workers and 1 <= len(workers) <= 2  # built once per process, never here


def test_input_is_read_at_most_a_window_ahead() -> None:
    consumed: list[int] = []

    def items() -> Iterator[int]:
        for item in range(40):
            consumed.append(item)
            yield item

    with OrderedPool(2, _setup, "w", batch_items=3, window=2) as pool:
        results = pool.map(_slow_first, items())
        first = next(results)
        assert first[0] == 0 and len(consumed) == 2 * 3  # two batches of three in flight, no more
        rest = list(results)
    assert [item for item, _ in [first, *rest]] == list(range(40))


def test_one_worker_runs_here_on_the_callers_state() -> None:
    with OrderedPool(1, _setup, "built", local=("given", -1)) as pool:
        assert list(pool.map(_slow_first, [5, 6])) == [(5, -1), (6, -1)]
    with OrderedPool(1, _setup, "built") as pool:
        assert list(pool.map(_slow_first, [7])) == [(7, os.getpid())]
