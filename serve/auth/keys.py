"""The API key store: one small JSON file under the appliance home, the only state replicas share.

A key is ``mla_<key_id>_<secret>``. The file keeps, per key, a random salt and
HMAC-SHA256(salt, secret); verification looks the record up by its public id and compares
digests with :func:`hmac.compare_digest`, so neither the secret nor timing reveal anything.
The server re-reads the file when it changes, so keys made or revoked with the CLI (or by
another replica) take effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from deid.errors import ConfigError, InputError
from deid.fileio import atomic_write_text
from serve.auth.protocol import KeyInfo, Role

KEY_PREFIX = "mla"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class _StoredKey:
    info: KeyInfo
    salt: bytes
    digest: bytes


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()


class ApiKeyStore:
    """Create, list, revoke and verify keys kept in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock")
        self._cache_guard = threading.Lock()
        self._cache_stamp: tuple[int, int] | None = None
        self._cache: dict[str, _StoredKey] = {}

    # --- administration (CLI and admin endpoints) -----------------------------------------

    def create(self, role: Role, label: str = "") -> tuple[str, KeyInfo]:
        """A new key; the returned secret is not stored anywhere and cannot be shown again."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        info = KeyInfo(key_id=key_id, role=role, label=label, created_at=datetime.now(UTC))
        with self._lock:
            records = self._read()
            records[key_id] = _StoredKey(info, salt, _digest(salt, secret))
            self._write(records)
        return f"{KEY_PREFIX}_{key_id}_{secret}", info

    def list(self) -> list[KeyInfo]:
        return sorted((record.info for record in self._read().values()), key=lambda info: info.created_at)

    def revoke(self, key_id: str) -> KeyInfo:
        with self._lock:
            records = self._read()
            record = records.get(key_id)
            if record is None:
                raise InputError(f"no API key with id {key_id}")
            if record.info.revoked_at is None:
                info = record.info.model_copy(update={"revoked_at": datetime.now(UTC)})
                records[key_id] = _StoredKey(info, record.salt, record.digest)
                self._write(records)
            return records[key_id].info

    # --- verification (every request) -----------------------------------------------------

    def verify(self, presented: str) -> KeyInfo | None:
        """The key's record if ``presented`` is a valid, unrevoked key; otherwise None."""
        prefix, _, rest = presented.partition("_")
        key_id, _, secret = rest.partition("_")
        record = self._current().get(key_id) if prefix == KEY_PREFIX else None
        salt = record.salt if record else b"\0" * 16
        expected = record.digest if record else b"\0" * 32
        matches = hmac.compare_digest(_digest(salt, secret), expected)
        if record is None or not matches or record.info.revoked_at is not None:
            return None
        return record.info

    def is_active(self, key_id: str) -> bool:
        """Whether a key that verified earlier may still be used; cheap enough to ask twice a second.

        A stat of the file, and a parse only when it changed (shared with :meth:`verify`), so
        a running request learns of a revocation by the CLI or by another replica too.
        """
        record = self._current().get(key_id)
        return record is not None and record.info.active

    def _current(self) -> dict[str, _StoredKey]:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._cache_guard:
            if stamp != self._cache_stamp:
                self._cache = self._read() if stamp else {}
                self._cache_stamp = stamp
            return self._cache

    # --- file format -----------------------------------------------------------------------

    def _read(self) -> dict[str, _StoredKey]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise ConfigError(f"the API key file is unreadable: {self.path} ({type(error).__name__})") from None
        if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
            raise ConfigError(f"the API key file has an unknown format: {self.path}")
        records = {}
        for item in data.get("keys", []):
            info = KeyInfo.model_validate({k: v for k, v in item.items() if k not in ("salt", "digest")})
            records[info.key_id] = _StoredKey(info, bytes.fromhex(item["salt"]), bytes.fromhex(item["digest"]))
        return records

    def _write(self, records: dict[str, _StoredKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        items = [
            {**record.info.model_dump(mode="json"), "salt": record.salt.hex(), "digest": record.digest.hex()}
            for record in records.values()
        ]
        atomic_write_text(self.path, json.dumps({"version": _FORMAT_VERSION, "keys": items}, indent=2) + "\n")
        os.chmod(self.path, 0o600)
