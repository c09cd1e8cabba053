"""Appending one signed, hash-chained ledger entry per API request.

Each replica writes its own ledger file (``api-<host>-<port>.jsonl`` in the ledger directory)
so replicas behind a load balancer never contend for one file; auditors verify each file with
``appliance audit verify``.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from appliance.config import ApplianceSettings
from serve.audit.protocol import AuditReport, RequestRecord

LEDGER_ACTION = "api.request"


class RequestLedger:
    def __init__(self, settings: ApplianceSettings, path: Path, replica: str) -> None:
        self.settings = settings
        self.path = path
        self.replica = replica
        self.entries_written = 0
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._writer: Any = None
        self._totals: dict[str, Counter[str]] = {
            "endpoint": Counter(), "status": Counter(), "role": Counter(), "phi": Counter(), "tokens": Counter()
        }

    def open(self) -> None:
        with self._lock:
            self._open_locked()

    def _open_locked(self) -> None:
        if self._writer is not None:
            return
        from deid.keystore import Keystore
        from deid.ledger.writer import LedgerWriter

        secret = self.settings.keystore.passphrase
        keystore = Keystore.open(self.settings.keystore_dir, secret.get_secret_value() if secret else None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._stack.enter_context(
            LedgerWriter.open(
                self.path,
                keystore.signing_key("ledger"),
                actor=f"serve:{self.replica}",
                checkpoint_every=self.settings.ledger.checkpoint_every,
            )
        )

    def record(self, entry: RequestRecord) -> None:
        """Blocking file append; call it from a worker thread."""
        payload = entry.model_dump(exclude_none=True)
        with self._lock:
            # A request refused while start-up is still loading the model comes before the
            # start-up hook opens the ledger; it is recorded all the same.
            self._open_locked()
            self._writer.append(LEDGER_ACTION, payload)
            self.entries_written += 1
            totals = self._totals
            totals["endpoint"][entry.endpoint] += 1
            totals["status"][str(entry.status)] += 1
            totals["role"][entry.role] += 1
            totals["phi"].update(entry.phi_types)
            totals["tokens"]["prompt"] += entry.prompt_tokens
            totals["tokens"]["completion"] += entry.completion_tokens

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
        with self._lock:
            self._stack.close()
            self._writer = None
