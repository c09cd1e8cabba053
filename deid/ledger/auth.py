"""What makes a ledger unforgeable by someone who can write its file but holds no key.

The hash chain and the signed checkpoints prove that nothing changed *after* it was sealed,
but anyone can compute sha256: an attacker could append entries with a correct chain (and
the next honest checkpoint would seal them), or cut the file back to an earlier checkpoint,
and both would still chain and verify. Two things under a keystore secret close that:

- every entry carries ``mac``, an HMAC of its canonical body (see :mod:`deid.ledger.entry`),
  so an entry written without the secret is told apart from one the appliance wrote; writers
  refuse to append to or seal a tail holding an entry that fails it;
- every writer keeps a *head record* outside the ledger, in the keystore directory, one per
  ledger (named by the ledger's first entry hash): the last sequence number and hash it wrote,
  under an HMAC. A ledger that no longer reaches its head record was cut back.

Both need the keystore, so they are checked on the appliance; an auditor elsewhere with only
public keys checks chain and signatures and cites heads with ``--expected-head``. What stays
possible for whoever can write the keystore directory as well is putting back an *older*
head record they copied earlier together with the matching older ledger; nothing without a
trusted monotonic counter could tell that apart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deid.errors import LedgerError

if TYPE_CHECKING:
    from deid.keystore import Keystore

HEADS_DIR = "ledger-heads"
_HEX64 = re.compile(r"[0-9a-f]{64}")
HEAD_RECORD_BYTES = 384  # fixed, so an update overwrites the whole record and never leaves a longer old one


@dataclass(frozen=True)
class Head:
    """The newest entry a writer of this appliance put in one ledger."""

    seq: int
    hash: str


@dataclass(frozen=True)
class LedgerAuth:
    """The keys behind entry MACs and head records, and where the head records live."""

    entry_key: bytes
    head_key: bytes
    heads_dir: Path

    @classmethod
    def from_keystore(cls, store: Keystore, secret_name: str = "ledger-auth") -> LedgerAuth:
        """Derive both keys from one keystore secret (never a signing or surrogate key)."""
        secret = store.secret(secret_name)
        return cls(
            entry_key=hmac.new(secret, b"deid-ledger-entry/v1", hashlib.sha256).digest(),
            head_key=hmac.new(secret, b"deid-ledger-head/v1", hashlib.sha256).digest(),
            heads_dir=store.directory / HEADS_DIR,
        )

    def entry_mac(self, body: bytes) -> str:
        return hmac.new(self.entry_key, body, hashlib.sha256).hexdigest()

    def _head_mac(self, ledger_id: str, head: Head) -> str:
        message = f"deid-ledger-head/v1\n{ledger_id}\n{head.seq}\n{head.hash}".encode("ascii")
        return hmac.new(self.head_key, message, hashlib.sha256).hexdigest()

    def head_path(self, ledger_id: str) -> Path:
        if not _HEX64.fullmatch(ledger_id):
            raise LedgerError("a ledger id is the 64-hex hash of its first entry")
        return self.heads_dir / f"{ledger_id[:32]}.json"

    def open_head(self, ledger_id: str) -> int:
        """A descriptor on the ledger's head record for :meth:`write_head`, kept open by a writer."""
        path = self.head_path(ledger_id)
        try:
            self.heads_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise LedgerError(f"cannot open the ledger head record in {self.heads_dir}: {error.strerror}") from None

    def write_head(self, fd: int, ledger_id: str, head: Head) -> None:
        """Overwrite the head record in place; called under the ledger's lock, after the entries were written.

        One ``pwrite`` of a fixed-size record at offset 0, not a rename: a rename costs milliseconds
        on some file systems and this runs on every append. Readers hold the ledger's lock too, so
        they never see a half-written record; a record under one disk sector is not torn by a crash.
        Not fsynced: the record can lag behind the ledger after a power cut, which still verifies.
        """
        record = json.dumps(
            {"ledger": ledger_id, "seq": head.seq, "hash": head.hash, "mac": self._head_mac(ledger_id, head)},
            sort_keys=True,
        ).encode("ascii")
        try:
            os.pwrite(fd, record.ljust(HEAD_RECORD_BYTES - 1) + b"\n", 0)
        except OSError as error:
            raise LedgerError(f"cannot record the ledger head in {self.heads_dir}: {error.strerror}") from None

    def read_head(self, ledger_id: str) -> Head | None:
        """The recorded head, None when this appliance recorded none; a forged record is an error."""
        path = self.head_path(ledger_id)
        try:
            record = json.loads(path.read_text(encoding="ascii"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError):
            raise LedgerError(f"the ledger head record {path.name} is unreadable") from None
        try:
            head = Head(int(record["seq"]), str(record["hash"]))
            valid = record["ledger"] == ledger_id and hmac.compare_digest(
                str(record["mac"]), self._head_mac(ledger_id, head)
            )
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise LedgerError(f"the ledger head record {path.name} was not written by this appliance")
        return head
