"""Starting and keeping alive the engine process the appliance sends generation to.

The engine runs as a child in its own session (so a stop reaches its workers too) with its
output discarded: engines log request text in some configurations, and nothing the appliance
runs may put a prompt in a log. A dead engine is restarted with a doubling delay (1 s to 60 s,
back to 1 s once it has stayed healthy for a minute); one that stops answering its health check
is killed and restarted the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time

import httpx

log = logging.getLogger("serve.upstream")

HEALTH_INTERVAL_S = 1.0
UNHEALTHY_CHECKS = 5  # consecutive failed checks of a running, once-healthy engine before a restart
MAX_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0


class EngineSupervisor:
    def __init__(self, command: list[str], health_url: str, start_timeout_s: float,
                 headers: dict[str, str] | None = None) -> None:
        self.command = command
        self.health_url = health_url
        self.start_timeout_s = start_timeout_s
        self.headers = headers or {}
        self.restarts = 0
        self._healthy = threading.Event()
        self._stop = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._watch, name="upstream-supervisor", daemon=True)

    @property
    def healthy(self) -> bool:
        return self._healthy.is_set()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        self._thread.start()

    def wait_healthy(self, timeout: float) -> bool:
        return self._healthy.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._terminate()

    def _check(self) -> bool:
        try:
            return httpx.get(self.health_url, headers=self.headers, timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _spawn(self) -> None:
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.warning("upstream engine started (pid %d)", self._process.pid)

    def _terminate(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self._spawn()
            started = time.monotonic()
            healthy_since: float | None = None
            failures = 0
            while not self._stop.wait(HEALTH_INTERVAL_S):
                assert self._process is not None
                if self._process.poll() is not None:
                    log.warning("upstream engine exited with status %s", self._process.returncode)
                    break
                if self._check():
                    failures = 0
                    healthy_since = healthy_since or time.monotonic()
                    self._healthy.set()
                    if time.monotonic() - healthy_since > STABLE_AFTER_S:
                        backoff = 1.0
                    continue
                failures += 1
                never_came_up = healthy_since is None and time.monotonic() - started > self.start_timeout_s
                if (healthy_since is not None and failures >= UNHEALTHY_CHECKS) or never_came_up:
                    log.warning("upstream engine failed its health check; restarting it")
                    break
            self._healthy.clear()
            self._terminate()
            if self._stop.is_set():
                return
            self.restarts += 1
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
