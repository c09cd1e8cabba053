from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from deid.egress import EgressBlockedError, EgressGuard, EgressMode, enforce_offline_environment, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", b"localhost", "0.0.0.0"])
def test_loopback_is_allowed(host: object) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "10.0.0.1", "192.168.1.1", "huggingface.co", "2001:db8::1"])
def test_everything_else_is_egress(host: str) -> None:
    assert not is_loopback(host)


def test_strict_guard_refuses_and_counts() -> None:
    guard = EgressGuard(mode=EgressMode.strict)
    with pytest.raises(EgressBlockedError, match="outbound network access refused"):
        guard.check("203.0.113.5", "connect")
    guard.check("127.0.0.1", "connect")
    assert guard.attempts == 1
    assert guard.blocked_targets == ["connect 203.0.113.5"]


def test_monitor_guard_only_counts() -> None:
    guard = EgressGuard(mode=EgressMode.monitor)
    guard.check("203.0.113.5", "connect")
    assert guard.attempts == 1


def test_offline_environment_variables() -> None:
    enforce_offline_environment()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_installed_guard_blocks_real_sockets_in_a_fresh_interpreter() -> None:
    """The audit hook is process-wide and permanent, so exercise it in a child process."""
    script = textwrap.dedent(
        """
        import socket, threading
        from deid.egress import go_offline
        guard = go_offline()
        outcomes = []
        for attempt in (
            lambda: socket.getaddrinfo("example.org", 443),
            lambda: socket.create_connection(("198.51.100.7", 9), timeout=1),
            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.51.100.7", 53)),
            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b"x"], [], 0, ("198.51.100.7", 53)),
            lambda: socket.socket().connect_ex(("198.51.100.7", 9)),
            lambda: socket.getnameinfo(("198.51.100.7", 443), 0),
            lambda: socket.gethostbyname("example.org"),
            lambda: socket.gethostbyaddr("198.51.100.7"),
        ):
            try:
                attempt()
                outcomes.append("open")
            except OSError as error:
                outcomes.append(type(error).__name__)
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
        client = socket.create_connection(server.getsockname(), timeout=2)
        client.close(); server.close()
        print(",".join(outcomes), guard.attempts)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [",".join(["EgressBlockedError"] * 8), "8"]
    assert socket  # the parent process is untouched


def _connect_out() -> str:
    """Run inside a worker: what happens when it tries to leave the machine."""
    try:
        socket.create_connection(("198.51.100.7", 443), timeout=1)
    except OSError as error:
        return type(error).__name__
    return "open"


def _connect_out_batch(state: object, batch: list[int]) -> list[str]:
    """A pool task that ignores the worker's state and tries to leave the machine instead."""
    return [_connect_out() for _ in batch]


def test_deid_workers_run_guarded() -> None:
    """Workers come from a fork server the parent's hook never reached; each installs the guard itself."""
    from deid.config import DeidConfig
    from deid.detection.parallel import detector_pool
    from deid.run.runner import WorkerSpec, build_context
    from deid.workers import OrderedPool

    with detector_pool(DeidConfig(), 2) as pool:  # deid detect's workers
        assert list(pool.map(_connect_out_batch, range(2))) == ["EgressBlockedError"] * 2
    spec = WorkerSpec(DeidConfig(), b"s" * 32, b"d" * 32, None)
    with OrderedPool(2, build_context, spec, batch_items=1) as pool:  # deid run's workers
        assert list(pool.map(_connect_out_batch, range(4))) == ["EgressBlockedError"] * 4
