"""Checking a ledger the way an auditor would: chain, sequence, signatures, tail.

The verifier needs no secret and reads no record: only the ledger and public keys. It walks
the file once, stops at the first fault and names it by the sequence number where the
ledger stops being what its writer wrote, with a kind an auditor can act on:

- ``edited``: an entry's bytes no longer match its hash, or it no longer matches the link
  stored in the entry after it (changed and re-hashed);
- ``deleted``: sequence numbers jump and the missing ones are nowhere in the file;
- ``reordered``: sequence numbers jump but the missing one appears later;
- ``inserted``: an entry repeats an earlier sequence number or does not link to its predecessor
  while the next entry does;
- ``wrong_key``: a checkpoint was signed by a key the auditor does not hold;
- ``bad_signature``: a checkpoint names a known key but its signature does not match the head;
- ``truncated``: entries after the last checkpoint are unsealed (the closing checkpoint is
  gone), or the head cited elsewhere (a model card, a dataset manifest) is not in the file;
- ``torn_tail``: the last line is incomplete (a writer crashed mid-write); every complete entry
  before it is still verified;
- ``unauthenticated`` (only with the keystore's :class:`deid.ledger.auth.LedgerAuth`): an entry
  carries no valid MAC, so someone without the key wrote it, or the head record is forged;
  ``truncated`` then also covers a ledger that no longer reaches the head its writers recorded
  (cut back to an earlier checkpoint).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deid.errors import LedgerError
from deid.keystore import key_id, load_public_keys
from deid.ledger.auth import Head, LedgerAuth
from deid.ledger.entry import (
    CHECKPOINT_ACTION,
    GENESIS_HASH,
    RECOVERY_ACTION,
    checkpoint_message,
    mac_matches,
    split_line,
)
from deid.ledger.writer import read_tail

KEY_ID = re.compile(r"[0-9a-f]{16}")


class ProblemKind(StrEnum):
    edited = "edited"
    deleted = "deleted"
    inserted = "inserted"
    reordered = "reordered"
    truncated = "truncated"
    wrong_key = "wrong_key"
    bad_signature = "bad_signature"
    torn_tail = "torn_tail"
    unauthenticated = "unauthenticated"


@dataclass(frozen=True)
class Problem:
    """The first fault: ``sequence`` is the entry where the ledger stops being trustworthy."""

    kind: ProblemKind
    sequence: int
    line: int
    detail: str

    def __str__(self) -> str:
        return f"entry {self.sequence} (line {self.line}): {self.kind.value}: {self.detail}"


@dataclass
class VerificationResult:
    """Outcome of :func:`verify_ledger`; ``verified`` entries are intact up to ``problem``."""

    ok: bool = True
    entries: int = 0
    verified: int = 0
    checkpoints: int = 0
    recoveries: int = 0
    head_seq: int = -1
    head_hash: str = GENESIS_HASH
    sealed_seq: int = -1
    unsealed: int = 0
    torn_tail_bytes: int = 0
    signatures_checked: bool = False
    entries_authenticated: bool = False
    recorded_head_seq: int | None = None
    key_ids: list[str] = field(default_factory=list)
    problem: Problem | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.problem is not None:
            data["problem"] = {**asdict(self.problem), "kind": self.problem.kind.value}
        return data


PublicKeyLike = Ed25519PublicKey | bytes


def _key_map(public_keys: Sequence[PublicKeyLike]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for item in public_keys:
        for key in load_public_keys(item) if isinstance(item, bytes) else [item]:
            keys[key_id(key)] = key
    return keys


class _Fault(Exception):
    def __init__(self, kind: ProblemKind, sequence: int, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.sequence = sequence
        self.detail = detail


def _decode(raw: bytes, expected: int) -> tuple[dict[str, Any], bytes, str]:
    """The entry and its hash, or an ``edited`` fault when its bytes were changed."""
    parts = split_line(raw)
    if parts is None:
        raise _Fault(ProblemKind.edited, expected, "the line is not a well-formed ledger entry")
    body, claimed = parts
    try:
        entry = json.loads(body)
    except ValueError:
        raise _Fault(ProblemKind.edited, expected, "the entry is not valid JSON") from None
    seq = entry.get("seq") if isinstance(entry, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise _Fault(ProblemKind.edited, expected, "the entry has no sequence number")
    if hashlib.sha256(body).hexdigest() != claimed:
        raise _Fault(ProblemKind.edited, seq, "the entry's content does not match its hash")
    if not isinstance(entry.get("prev"), str) or not isinstance(entry.get("payload"), dict):
        raise _Fault(ProblemKind.edited, seq, "the entry lacks its link or payload")
    return entry, body, claimed


def _peek(raw: bytes) -> tuple[int | None, str | None]:
    """Sequence and link of a later line, best effort, to tell reordering from deletion."""
    parts = split_line(raw)
    if parts is None:
        return None, None
    try:
        entry = json.loads(parts[0])
    except ValueError:
        return None, None
    if not isinstance(entry, dict):
        return None, None
    return entry.get("seq"), entry.get("prev")


class _Walk:
    """State of one pass over the lines; each step either accepts an entry or raises a fault."""

    def __init__(
        self,
        lines: list[bytes],
        keys: dict[str, Ed25519PublicKey] | None,
        auth: LedgerAuth | None,
        recorded: Head | None,
    ) -> None:
        self.lines = lines
        self.keys = keys
        self.auth = auth
        self.recorded = recorded
        self.expected = 0
        self.prev = GENESIS_HASH
        self.result = VerificationResult(
            signatures_checked=keys is not None,
            entries_authenticated=auth is not None,
            recorded_head_seq=recorded.seq if recorded is not None else None,
        )

    def step(self, index: int) -> None:
        entry, body, digest = _decode(self.lines[index], self.expected)
        seq = entry["seq"]
        if seq > self.expected:
            later = (_peek(line)[0] for line in self.lines[index + 1 :])
            if any(s == self.expected for s in later):
                raise _Fault(ProblemKind.reordered, self.expected, f"entry {seq} appears before entry {self.expected}")
            if seq == self.expected + 1:
                raise _Fault(ProblemKind.deleted, self.expected, f"entry {self.expected} is missing")
            raise _Fault(ProblemKind.deleted, self.expected, f"entries {self.expected} to {seq - 1} are missing")
        if seq < self.expected:
            where = seq if seq == self.expected - 1 else self.expected
            raise _Fault(ProblemKind.inserted, where, f"an extra entry claiming sequence {seq} was inserted")
        if entry["prev"] != self.prev:
            if index + 1 < len(self.lines) and _peek(self.lines[index + 1]) == (seq, self.prev):
                raise _Fault(ProblemKind.inserted, seq, "an entry that does not link to its predecessor was inserted")
            if index == 0:
                raise _Fault(ProblemKind.edited, seq, "the first entry does not start a chain")
            raise _Fault(
                ProblemKind.edited, seq - 1, f"the entry was changed after entry {seq} was chained to it"
            )
        if self.auth is not None and not mac_matches(self.auth, body):
            detail = "the entry carries no valid MAC: it was not written by this appliance"
            raise _Fault(ProblemKind.unauthenticated, seq, detail)
        if self.recorded is not None and seq == self.recorded.seq and digest != self.recorded.hash:
            detail = f"entry {seq} is not the entry this appliance recorded as its head there"
            raise _Fault(ProblemKind.edited, seq, detail)
        if entry.get("action") == CHECKPOINT_ACTION:
            self._checkpoint(seq, entry["payload"])
        elif entry.get("action") == RECOVERY_ACTION:
            self.result.recoveries += 1
        self.expected = seq + 1
        self.prev = digest
        self.result.verified += 1
        self.result.head_seq = seq
        self.result.head_hash = digest

    def _checkpoint(self, seq: int, payload: dict[str, Any]) -> None:
        if payload.get("covers_seq") != seq - 1 or payload.get("covers_hash") != self.prev:
            raise _Fault(ProblemKind.edited, seq, "the checkpoint does not cover the entry before it")
        claimed = payload.get("key_id")
        # Only a well-formed key id is echoed: a forged checkpoint could carry any text there.
        kid = claimed if isinstance(claimed, str) and KEY_ID.fullmatch(claimed) else None
        if self.keys is not None:
            key = self.keys.get(kid) if kid is not None else None
            if key is None:
                detail = f"the checkpoint was signed by key {kid or '(malformed id)'}, which is not trusted"
                raise _Fault(ProblemKind.wrong_key, seq, detail)
            try:
                key.verify(bytes.fromhex(str(payload.get("signature"))), checkpoint_message(seq - 1, self.prev))
            except (InvalidSignature, ValueError):
                raise _Fault(ProblemKind.bad_signature, seq, f"the signature does not verify with key {kid}") from None
        if kid is not None and kid not in self.result.key_ids:
            self.result.key_ids.append(kid)
        self.result.checkpoints += 1
        self.result.sealed_seq = seq


def _read_lines(path: Path, auth: LedgerAuth | None) -> tuple[list[bytes], int, Head | Problem | None]:
    """All complete lines, the size of a torn tail and the recorded head, read under a shared lock.

    Writers hold an exclusive ``flock`` while they write an entry and its head record, so a
    verifier never mistakes a line being written right now for a torn tail, nor sees a head
    record newer than the lines it read. The head is a :class:`Problem` when it is missing or forged.
    """
    head: Head | Problem | None = None
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            data = handle.read()
            lines = data.split(b"\n")
            first = split_line(lines[0]) if auth is not None and len(lines) > 1 else None
            if auth is not None and first is not None:
                try:
                    head = auth.read_head(first[1])
                except LedgerError as error:
                    head = Problem(ProblemKind.unauthenticated, 0, 1, str(error))
                if head is None:
                    detail = "this appliance holds no head record for the ledger: it was removed, or it is not this appliance's"
                    head = Problem(ProblemKind.unauthenticated, 0, 1, detail)
    except FileNotFoundError:
        raise LedgerError(f"ledger not found: {path}") from None
    except OSError as error:
        raise LedgerError(f"cannot read ledger {path}: {error.strerror}") from None
    torn = len(lines.pop())
    return lines, torn, head


def verify_ledger(
    path: Path,
    public_keys: Sequence[PublicKeyLike] | None = None,
    *,
    expected_head: str | None = None,
    allow_unsealed: bool = False,
    auth: LedgerAuth | None = None,
) -> VerificationResult:
    """Verify a ledger; stops at the first fault and reports it in ``result.problem``.

    ``public_keys`` (key objects or PEM bytes, current and retired) are the keys trusted for
    checkpoints; None checks chain and sequence only (``signatures_checked`` is then False).
    ``allow_unsealed`` accepts entries after the last checkpoint, for a ledger a running
    service is still appending to. ``expected_head`` is a head hash cited elsewhere that must
    be in the ledger. ``auth`` (the keystore's) also checks every entry's MAC and that the
    ledger still reaches the head its writers recorded outside it.
    """
    lines, torn, head = _read_lines(path, auth)
    recorded = head if isinstance(head, Head) else None
    walk = _Walk(lines, _key_map(public_keys) if public_keys is not None else None, auth, recorded)
    result = walk.result
    result.entries = len(lines)
    result.torn_tail_bytes = torn
    if isinstance(head, Problem):
        result.ok = False
        result.problem = head
        return result
    for index in range(len(lines)):
        try:
            walk.step(index)
        except _Fault as fault:
            result.ok = False
            result.problem = Problem(fault.kind, fault.sequence, index + 1, fault.detail)
            return result
    result.unsealed = result.head_seq - result.sealed_seq
    next_seq = result.head_seq + 1
    if torn:
        result.problem = Problem(
            ProblemKind.torn_tail, next_seq, len(lines) + 1, f"the last {torn} bytes are an incomplete entry"
        )
    elif recorded is not None and recorded.seq > result.head_seq:
        result.problem = Problem(
            ProblemKind.truncated,
            next_seq,
            len(lines) + 1,
            f"the ledger ends at entry {result.head_seq} but this appliance recorded entries up to "
            f"{recorded.seq}: it was cut back",
        )
    elif expected_head is not None and not _contains_hash(lines, expected_head):
        result.problem = Problem(
            ProblemKind.truncated, next_seq, len(lines) + 1, "the head cited for this ledger is not in it"
        )
    elif result.unsealed and not allow_unsealed:
        result.problem = Problem(
            ProblemKind.truncated,
            result.sealed_seq + 1,
            result.sealed_seq + 2,
            f"{result.unsealed} entries after the last signed checkpoint are unsealed: the ledger was "
            "truncated, entries were appended without the key, or a writer is still open or crashed",
        )
    result.ok = result.problem is None
    return result


def _contains_hash(lines: list[bytes], digest: str) -> bool:
    if digest == GENESIS_HASH:
        return True
    needle = f',"hash":"{digest}"}}'.encode()
    return any(line.endswith(needle) for line in lines)


def ledger_head(path: Path) -> str:
    """Hash of the last complete entry: what lineage records (dataset manifests, model cards) cite."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise LedgerError(f"ledger not found: {path}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return read_tail(fd, os.fstat(fd).st_size, stop_after=0).last_hash
    finally:
        os.close(fd)
