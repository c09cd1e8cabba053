"""Appending to the ledger from any number of processes without breaking the chain.

Every append takes an exclusive lock on the ledger file, re-reads the tail when the file
changed since this writer last looked (another process appended), and writes one whole line
with a single ``write`` followed by ``fsync``. A crash can therefore only leave a partial last
line; the next writer cuts it off and records that it did (with the size and hash of what was
cut) in a ``ledger.recovered`` entry, so the repair itself is part of the evidence.

Signed checkpoints seal the head every ``checkpoint_every`` entries (counted in the file, not
per writer) and at close; whoever closes last seals what the others left open.

Every entry carries a MAC under the keystore's ledger secret, and every write updates the
ledger's head record (see :mod:`deid.ledger.auth`). A writer that finds an entry without a
valid MAC after the last checkpoint refuses to append or seal: signing it would vouch for an
entry someone without the key put there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.errors import LedgerError
from deid.keystore import key_id
from deid.ledger.auth import Head, LedgerAuth
from deid.ledger.entry import (
    CHECKPOINT_ACTION,
    CHECKPOINT_PREFIX,
    GENESIS_HASH,
    RECOVERY_ACTION,
    RESERVED_ACTIONS,
    checkpoint_message,
    encode_entry,
    mac_matches,
    split_line,
)
from deid.ledger.payload import validate_action, validate_actor, validate_payload

BLOCK = 1 << 16


@dataclass
class TailState:
    """What an append needs to know about the file: where it ends and what it ends with."""

    size: int
    last_seq: int
    last_hash: str
    unsealed: int
    torn_bytes: int
    forged: int = 0


def _parse_tail_line(line: bytes) -> tuple[int, str]:
    parts = split_line(line)
    if parts is None:
        raise LedgerError("the ledger's last entry is damaged; run 'appliance audit verify' on it")
    body, claimed = parts
    if hashlib.sha256(body).hexdigest() != claimed:
        raise LedgerError("the ledger's last entry does not match its hash; run 'appliance audit verify' on it")
    try:
        seq = json.loads(body)["seq"]
    except (ValueError, KeyError, TypeError):
        raise LedgerError("the ledger's last entry is damaged; run 'appliance audit verify' on it") from None
    return int(seq), claimed


def read_tail(
    fd: int, size: int, stop_after: int | None = None, authentic: Callable[[bytes], bool] | None = None
) -> TailState:
    """Scan backwards from the end: last complete entry, torn bytes, entries since the last checkpoint.

    The scan stops at the last checkpoint, or after ``stop_after`` unsealed entries (the
    writer only needs to know whether a checkpoint is due), so it costs one block, not the file.
    ``authentic`` checks each unsealed line scanned; ``forged`` counts those it rejects.
    """
    position = size
    pending = b""
    torn: int | None = None
    last: tuple[int, str] | None = None
    unsealed = 0
    forged = 0
    while True:
        at_start = position == 0
        if at_start:
            lines = [pending] if pending else []
            pending = b""
        else:
            start = max(0, position - BLOCK)
            pending = os.pread(fd, position - start, start) + pending
            position = start
            lines = pending.split(b"\n")
            pending = lines.pop(0)  # maybe the incomplete start of a line: wait for the block before
        if torn is None:
            if not lines and not at_start:
                continue
            torn = len(lines.pop()) if lines else 0  # bytes after the final newline
        for line in reversed(lines):
            if not line:
                continue
            if last is None:
                last = _parse_tail_line(line)
            if line.startswith(CHECKPOINT_PREFIX) or (stop_after is not None and unsealed >= stop_after):
                return TailState(size, last[0], last[1], unsealed, torn, forged)
            if authentic is not None and not authentic(line):
                forged += 1
            unsealed += 1
        if at_start:
            if last is None:
                return TailState(size, -1, GENESIS_HASH, 0, torn)
            return TailState(size, last[0], last[1], unsealed, torn, forged)


class LedgerWriter:
    """Appends PHI-free entries; use as a context manager so the close checkpoint is written."""

    def __init__(
        self,
        path: Path,
        signing_key: Ed25519PrivateKey,
        auth: LedgerAuth,
        actor: str,
        checkpoint_every: int,
        fsync: bool,
    ) -> None:
        self.path = path
        self.actor = actor
        self.checkpoint_every = checkpoint_every
        self._fsync = fsync
        self._key = signing_key
        self._key_id = key_id(signing_key.public_key())
        self._auth = auth
        self._ledger_id: str | None = None
        self._head_fd: int | None = None
        self._thread_lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        self._pid = os.getpid()
        self._state: TailState | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        signing_key: Ed25519PrivateKey,
        *,
        auth: LedgerAuth,
        actor: str,
        checkpoint_every: int = 1000,
        fsync: bool = True,
    ) -> LedgerWriter:
        """Open (creating if needed) a ledger; an existing one is continued, never rewritten."""
        validate_actor(actor)
        if checkpoint_every < 1:
            raise LedgerError("checkpoint_every must be at least 1")
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = cls(path, signing_key, auth, actor, checkpoint_every, fsync)
        except OSError as error:
            raise LedgerError(f"cannot open ledger {path}: {error.strerror}") from None
        with writer._locked():
            pass  # repairs a torn tail left by a crashed writer before anyone relies on it
        return writer

    @property
    def key_id(self) -> str:
        return self._key_id

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def append(self, action: str, payload: dict[str, Any]) -> int:
        """Validate and append one entry; returns its sequence number."""
        validate_action(action)
        if action in RESERVED_ACTIONS:
            raise LedgerError(f"ledger action {action} is written by the ledger itself")
        validate_payload(payload)
        with self._locked() as state:
            seq = self._write(state, action, payload)
            if state.unsealed >= self.checkpoint_every:
                self._checkpoint(state)
            self._sync()
            self._publish(state)
        return seq

    def checkpoint(self) -> int | None:
        """Seal the current head now; returns the checkpoint's sequence, None if nothing was unsealed."""
        with self._locked() as state:
            if state.unsealed == 0:
                return None
            seq = self._checkpoint(state)
            self._sync()
            self._publish(state)
        return seq

    def close(self) -> None:
        """Seal everything appended so far (by any writer) and release the file."""
        if self._fd is None:
            return
        try:
            self.checkpoint()
        finally:
            os.close(self._fd)
            self._fd = None
            if self._head_fd is not None:
                os.close(self._head_fd)
                self._head_fd = None

    # ----- internals ---------------------------------------------------------------
    def _locked(self) -> _Locked:
        if self._fd is None:
            raise LedgerError("the ledger writer is closed")
        if os.getpid() != self._pid:
            # A forked child shares the parent's open file, and with it the lock: both would "hold" it.
            raise LedgerError("a ledger writer cannot be used across fork; open one in each process")
        return _Locked(self)

    def _refresh(self) -> TailState:
        """Current tail state; re-read only if the file changed since this writer's last write."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if self._state is not None and self._state.size == size:
            return self._state
        state = read_tail(self._fd, size, stop_after=self.checkpoint_every, authentic=self._authentic)
        if state.forged:
            raise LedgerError(
                f"{state.forged} entries after the last checkpoint were not written by this appliance "
                "(their MAC does not verify); refusing to append to or seal them: run 'appliance audit verify'"
            )
        if state.torn_bytes:
            state = self._repair(state)
        self._state = state
        return state

    def _repair(self, state: TailState) -> TailState:
        assert self._fd is not None
        keep = state.size - state.torn_bytes
        torn = os.pread(self._fd, state.torn_bytes, keep)
        os.ftruncate(self._fd, keep)
        state.size = keep
        state.torn_bytes = 0
        self._write(
            state,
            RECOVERY_ACTION,
            {"discarded_bytes": len(torn), "discarded_sha256": hashlib.sha256(torn).hexdigest()},
        )
        self._sync()
        self._publish(state)
        return state

    def _write(self, state: TailState, action: str, payload: dict[str, Any]) -> int:
        assert self._fd is not None
        seq = state.last_seq + 1
        body = {
            "seq": seq,
            "time": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "actor": self.actor,
            "action": action,
            "payload": payload,
            "prev": state.last_hash,
        }
        line, digest = encode_entry(body, self._auth)
        written = os.write(self._fd, line)
        if written != len(line):
            raise LedgerError("short write to the ledger (disk full?); the partial entry will be cut off")
        if seq == 0:
            self._ledger_id = digest
        state.size += written
        state.last_seq = seq
        state.last_hash = digest
        state.unsealed = 0 if action == CHECKPOINT_ACTION else state.unsealed + 1
        return seq

    def _checkpoint(self, state: TailState) -> int:
        signature = self._key.sign(checkpoint_message(state.last_seq, state.last_hash))
        payload = {
            "key_id": self._key_id,
            "covers_seq": state.last_seq,
            "covers_hash": state.last_hash,
            "signature": signature.hex(),
        }
        return self._write(state, CHECKPOINT_ACTION, payload)

    def _publish(self, state: TailState) -> None:
        """Record the new head outside the ledger, after the entries it names were synced."""
        ledger_id = self._first_hash()
        if self._head_fd is None:
            self._head_fd = self._auth.open_head(ledger_id)
        self._auth.write_head(self._head_fd, ledger_id, Head(state.last_seq, state.last_hash))

    def _authentic(self, line: bytes) -> bool:
        parts = split_line(line)
        return parts is not None and mac_matches(self._auth, parts[0])

    def _first_hash(self) -> str:
        """The ledger's id: the hash of its first entry, read once per writer."""
        if self._ledger_id is None:
            assert self._fd is not None
            head = os.pread(self._fd, BLOCK, 0)
            while b"\n" not in head and len(head) % BLOCK == 0 and head:
                head += os.pread(self._fd, BLOCK, len(head))
            parts = split_line(head.split(b"\n", 1)[0])
            if parts is None or hashlib.sha256(parts[0]).hexdigest() != parts[1]:
                raise LedgerError("the ledger's first entry is damaged; run 'appliance audit verify' on it")
            self._ledger_id = parts[1]
        return self._ledger_id

    def _sync(self) -> None:
        if self._fsync and self._fd is not None:
            os.fsync(self._fd)


class _Locked:
    """Thread lock, then an exclusive ``flock`` on the ledger itself, then a fresh view of the tail.

    ``flock`` belongs to this writer's own open file description, so it excludes other
    processes and other writers in this process alike; a failed write drops the cached tail.
    """

    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer

    def __enter__(self) -> TailState:
        self._writer._thread_lock.acquire()
        try:
            assert self._writer._fd is not None
            fcntl.flock(self._writer._fd, fcntl.LOCK_EX)
        except BaseException:
            self._writer._thread_lock.release()
            raise
        try:
            return self._writer._refresh()
        except BaseException:
            self._release()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._writer._state = None
        self._release()

    def _release(self) -> None:
        assert self._writer._fd is not None
        fcntl.flock(self._writer._fd, fcntl.LOCK_UN)
        self._writer._thread_lock.release()
