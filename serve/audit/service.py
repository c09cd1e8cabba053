"""Appending one signed, hash-chained ledger entry per API request, and refusals in bounded form.

Each replica writes its own ledger file (``api-<host>-<port>.jsonl`` in the ledger directory)
so replicas behind a load balancer never contend for one file; auditors verify each file with
``appliance audit verify``.

Refused requests (bad or missing key, wrong role, rate limit, invalid body, unknown route) are
recorded too, because a guessed or stolen key shows up there first; but each costs an fsynced
entry, and anyone who can reach the port can send them. So the first refusal of each kind
(route, status, reason, key) in a window is written at once, and the rest of that window is
counted and written as one ``api.refused`` entry when the window closes: a flood of any size
adds a handful of entries per minute instead of one per request.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from serve.audit.protocol import AuditReport, RequestRecord
from serve.errors import RefusalHook
from serve.middleware import route_template

LEDGER_ACTION = "api.request"
REFUSED_ACTION = "api.refused"
ADMIN_ACTION = "api.admin"
NO_KEY = "none"  # key id and role of a refused request that presented no valid key


@dataclass(frozen=True)
class LedgerTarget:
    """Where a replica's ledger goes and what signs it: all the request ledger needs of the settings."""

    path: Path
    replica: str
    keystore_dir: Path
    keystore_passphrase: str | None
    signing_key_name: str = "ledger"
    checkpoint_every: int = 1000
    refusal_window_seconds: float = 60.0


@dataclass(frozen=True)
class Refusal:
    """One kind of refused request; never the presented key, the raw path or any request content."""

    endpoint: str
    status: int
    reason: str
    key_id: str = NO_KEY
    role: str = NO_KEY


class RequestLedger:
    def __init__(self, target: LedgerTarget) -> None:
        self.target = target
        self.path = target.path
        self.replica = target.replica
        self.entries_written = 0
        self.refusals_seen = 0
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._writer: Any = None
        self._totals: dict[str, Counter[str]] = {
            "endpoint": Counter(), "status": Counter(), "role": Counter(), "phi": Counter(), "tokens": Counter()
        }
        # Refusals of the current window: kinds already written individually, and how many of each
        # were only counted since.
        self._window_started = time.monotonic()
        self._written_kinds: set[Refusal] = set()
        self._suppressed: Counter[Refusal] = Counter()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def open(self) -> None:
        with self._lock:
            self._open_locked()
        if self._flusher is None:
            self._stop.clear()
            self._flusher = threading.Thread(target=self._flush_periodically, name="ledger-refusals", daemon=True)
            self._flusher.start()

    def _open_locked(self) -> None:
        if self._writer is not None:
            return
        from deid.keystore import Keystore
        from deid.ledger.auth import LedgerAuth
        from deid.ledger.writer import LedgerWriter

        target = self.target
        keystore = Keystore.open(target.keystore_dir, target.keystore_passphrase)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._stack.enter_context(
            LedgerWriter.open(
                self.path,
                keystore.signing_key(target.signing_key_name),
                auth=LedgerAuth.from_keystore(keystore),
                actor=f"serve:{self.replica}",
                checkpoint_every=target.checkpoint_every,
            )
        )

    def record(self, entry: RequestRecord) -> None:
        """Blocking file append; call it from a worker thread."""
        with self._lock:
            self._append_request(entry)

    def _append_request(self, entry: RequestRecord) -> None:
        # A request refused while start-up is still loading the model comes before the start-up
        # hook opens the ledger; it is recorded all the same.
        self._open_locked()
        self._writer.append(LEDGER_ACTION, entry.model_dump(exclude_none=True))
        self.entries_written += 1
        totals = self._totals
        totals["endpoint"][entry.endpoint] += 1
        totals["status"][str(entry.status)] += 1
        totals["role"][entry.role] += 1
        totals["phi"].update(entry.phi_types)
        totals["tokens"]["prompt"] += entry.prompt_tokens
        totals["tokens"]["completion"] += entry.completion_tokens

    def record_refusal(self, refusal: Refusal) -> None:
        """Blocking: the first refusal of its kind in the window is an entry, later ones only a count."""
        with self._lock:
            self.refusals_seen += 1
            self._roll_window_locked()
            if refusal in self._written_kinds:
                self._suppressed[refusal] += 1
                return
            self._written_kinds.add(refusal)
            self._append_request(
                RequestRecord(
                    request_id=f"refused-{uuid.uuid4().hex}",
                    endpoint=refusal.endpoint,
                    key_id=refusal.key_id,
                    role=refusal.role,
                    status=refusal.status,
                    reason=refusal.reason,
                )
            )

    def record_admin(self, action: str, actor_key_id: str, **fields: str) -> None:
        """An administrative act (key created or revoked, model reloaded): who did it and to what."""
        with self._lock:
            self._open_locked()
            self._writer.append(ADMIN_ACTION, {"kind": action, "actor_key_id": actor_key_id, **fields})
            self.entries_written += 1

    def flush_refusals(self) -> None:
        """Write the counts of the refusals that were only counted; the next window starts now."""
        with self._lock:
            self._flush_locked()

    def _roll_window_locked(self) -> None:
        if time.monotonic() - self._window_started >= self.target.refusal_window_seconds:
            self._flush_locked()

    def _flush_locked(self) -> None:
        window = time.monotonic() - self._window_started
        if self._suppressed:
            self._open_locked()
            for refusal, count in sorted(self._suppressed.items(), key=lambda item: (item[0].endpoint, item[0].status)):
                self._writer.append(
                    REFUSED_ACTION,
                    {
                        "endpoint": refusal.endpoint,
                        "status": refusal.status,
                        "reason": refusal.reason,
                        "key_id": refusal.key_id,
                        "role": refusal.role,
                        "refused_count": count,
                        "window_seconds": round(window, 3),
                    },
                )
                self.entries_written += 1
                self._totals["status"][str(refusal.status)] += count
        self._suppressed.clear()
        self._written_kinds.clear()
        self._window_started = time.monotonic()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.target.refusal_window_seconds):
            with self._lock:
                if self._writer is not None:
                    self._roll_window_locked()

    def report(self) -> AuditReport:
        with self._lock:
            totals = self._totals
            return AuditReport(
                replica=self.replica,
                requests=self.entries_written,
                by_endpoint=dict(totals["endpoint"]),
                by_status=dict(totals["status"]),
                by_role=dict(totals["role"]),
                phi_types=dict(totals["phi"]),
                prompt_tokens=totals["tokens"]["prompt"],
                completion_tokens=totals["tokens"]["completion"],
            )

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
            self._flusher = None
        with self._lock:
            if self._writer is not None:
                self._flush_locked()
            self._stack.close()
            self._writer = None


def refusal_recorder(ledger: RequestLedger) -> RefusalHook:
    """The error handlers' hook: a refused request becomes a (bounded) ledger record."""

    async def record(request: Request, status: int, reason: str) -> None:
        principal = getattr(request.state, "principal", None)
        refusal = Refusal(
            endpoint=route_template(request.scope) or "/unmatched",
            status=status,
            reason=reason,
            key_id=principal.key_id if principal is not None else NO_KEY,
            role=principal.role.value if principal is not None else NO_KEY,
        )
        await run_in_threadpool(ledger.record_refusal, refusal)

    return record
