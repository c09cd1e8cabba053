"""Optional re-identification vault: surrogate back to original, for the rare lawful need.

Off by default (``ledger.vault_enabled``). When a hospital turns it on, the mapping is kept
encrypted with AES-GCM under the vault's own keystore secret, never the keys that sign the
ledger or derive surrogates, so holding one does not open the other. Rows are found by a keyed
hash of (document id, surrogate): the file alone does not even say which surrogates exist.
Every reveal, granted or not, is written to the ledger before anything is returned, and if
that write fails nothing is revealed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as random_source
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deid.errors import ApplianceError, ExitCode
from deid.ledger.writer import LedgerWriter

REVEAL_ACTION = "vault.access"


class VaultError(ApplianceError):
    """The vault cannot serve a request; messages never include originals or surrogates."""

    exit_code = ExitCode.VAULT


def _derive(key: bytes, purpose: bytes) -> bytes:
    """Separate keys for lookup and encryption from the one vault secret."""
    return hmac.new(key, b"medical-appliance vault/" + purpose, hashlib.sha256).digest()


class Vault:
    """A sqlite file of sealed originals; use as a context manager."""

    def __init__(self, connection: sqlite3.Connection, key: bytes) -> None:
        self._db = connection
        self._lookup_key = _derive(key, b"lookup")
        self._cipher = AESGCM(_derive(key, b"encrypt"))

    @classmethod
    def open(cls, path: Path, key: bytes) -> Vault:
        """Open or create the vault at ``path`` (file mode 0600); ``key`` is a 32-byte keystore secret."""
        if len(key) != 32:
            raise VaultError("the vault key must be 32 bytes")
        path = Path(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            connection = sqlite3.connect(path, timeout=30)
            connection.execute(
                "CREATE TABLE IF NOT EXISTS vault (lookup TEXT PRIMARY KEY, entity_type TEXT NOT NULL,"
                " nonce BLOB NOT NULL, sealed BLOB NOT NULL)"
            )
            connection.commit()
        except (OSError, sqlite3.Error) as error:
            raise VaultError(f"cannot open the vault at {path}: {type(error).__name__}") from None
        return cls(connection, key)

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def lookup_hash(self, document_id: str, surrogate: str) -> str:
        message = f"{document_id}\0{surrogate}".encode()
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

    def put_many(self, document_id: str, items: Iterable[tuple[str, str, str]]) -> int:
        """Store (surrogate, original, entity_type) triples of one document; returns how many."""
        rows = []
        for surrogate, original, entity_type in items:
            lookup = self.lookup_hash(document_id, surrogate)
            nonce = random_source.token_bytes(12)
            sealed = self._cipher.encrypt(nonce, original.encode("utf-8"), lookup.encode("ascii"))
            rows.append((lookup, entity_type, nonce, sealed))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vault VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def reveal(self, document_id: str, surrogate: str, *, ledger: LedgerWriter, reason: str) -> str:
        """The original behind a surrogate; the access is in the ledger before the answer is returned."""
        lookup = self.lookup_hash(document_id, surrogate)
        row = self._db.execute("SELECT entity_type, nonce, sealed FROM vault WHERE lookup = ?", (lookup,)).fetchone()
        entry = {"document_id": document_id, "lookup_hash": lookup, "reason": reason, "granted": row is not None}
        if row is not None:
            entry["entity_type"] = row[0]
        ledger.append(REVEAL_ACTION, entry)
        if row is None:
            raise VaultError("no vault entry for that document and surrogate (the attempt was recorded)")
        try:
            return self._cipher.decrypt(row[1], row[2], lookup.encode("ascii")).decode("utf-8")
        except InvalidTag:
            raise VaultError("the vault entry does not decrypt: wrong vault key or a damaged entry") from None
