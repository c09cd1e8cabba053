"""The appliance's keystore: secrets and signing keys, encrypted at rest.

Everything private lives in one JSON file, each item sealed with AES-GCM under a
key-encryption key (KEK). The KEK comes from a passphrase (scrypt) or, on appliances that
must start unattended, from a random ``master.key`` file readable only by its owner. The
associated data of every sealed item names what it is, so a ciphertext moved to another slot
does not decrypt.

Signing keys are rotated, never forgotten: the public half of every retired key is kept
(under its key id) so ledgers and bundles signed before a rotation still verify, while the
retired private half is destroyed. The public halves are listed in the clear, so each listing
carries a binding, an HMAC under a key derived from the KEK: whoever can write the file but not
unlock it cannot add a key of their own (say, as a "retired" one) and have ledgers or bundles
they re-signed with it verify. :meth:`Keystore.keys` refuses a listing without a valid binding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets as random_source
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from filelock import FileLock

from deid.errors import KeystoreError
from deid.fileio import atomic_write_text

STORE_FILE = "keystore.json"
MASTER_KEY_FILE = "master.key"
LOCK_FILE = ".keystore.lock"
FORMAT_VERSION = 1
SECRET_BYTES = 32
KEY_ID_HEX = 16
# scrypt cost: about 0.1 s and 32 MiB per unlock, paid once per process.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_CHECK_PLAINTEXT = b"medical-appliance keystore"


def keyed_hash(secret: bytes, value: str) -> str:
    """HMAC-SHA256 hex: stable pseudonymous ids that cannot be reversed without the secret."""
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key: the first 16 hex digits of sha256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX]


def load_public_keys(pem: bytes) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a PEM file (an export holds the current and retired keys)."""
    marker = b"-----END PUBLIC KEY-----"
    keys: list[Ed25519PublicKey] = []
    begin = b"-----BEGIN PUBLIC KEY-----"
    for block in pem.split(marker):
        start = block.find(begin)
        if start < 0:
            continue
        try:
            key = serialization.load_pem_public_key(block[start:].strip() + b"\n" + marker + b"\n")
        except ValueError:
            raise KeystoreError("public key file holds a block that is not a valid PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeystoreError("public key file holds a key that is not Ed25519")
        keys.append(key)
    if not keys:
        raise KeystoreError("no PEM public key found in the public key file")
    return keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class KeyInfo:
    """One signing key as the keystore lists it; ``retired`` is None for the current key."""

    name: str
    key_id: str
    public_pem: bytes
    created: str
    retired: str | None


class Keystore:
    """Handle on a keystore directory; decrypted items are cached on the instance only."""

    def __init__(self, directory: Path, kek: bytes, lock: FileLock) -> None:
        self.directory = directory
        self._kek = AESGCM(kek)
        self._binding_key = hmac.new(kek, b"keystore-public-key-binding/v1", hashlib.sha256).digest()
        self._lock = lock
        self._secrets: dict[str, bytes] = {}
        self._signing: dict[str, Ed25519PrivateKey] = {}

    # ----- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path, passphrase: str | None = None) -> Keystore:
        """Open the keystore, creating it (mode 0700) on first use.

        Raises :class:`KeystoreError` when the passphrase is wrong or when the way of
        unlocking (passphrase or key file) does not match how the keystore was created.
        """
        directory = Path(directory)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if directory.stat().st_mode & 0o077:
                directory.chmod(0o700)  # created by someone else with a looser umask
        except OSError as error:
            raise KeystoreError(f"cannot create keystore directory {directory}: {error.strerror}") from None
        lock = FileLock(str(directory / LOCK_FILE))
        with lock:
            store = cls._read_store(directory)
            if store is None:
                store, kek = cls._initialise(directory, passphrase)
            else:
                kek = cls._unlock(directory, store, passphrase)
        return cls(directory, kek, lock)

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether a keystore was already created there (opening would otherwise create one)."""
        return (Path(directory) / STORE_FILE).is_file()

    @staticmethod
    def _read_store(directory: Path) -> dict[str, Any] | None:
        path = directory / STORE_FILE
        if not path.exists():
            return None
        try:
            store = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise KeystoreError(f"keystore file is unreadable or damaged: {path}") from None
        if not isinstance(store, dict) or store.get("version") != FORMAT_VERSION:
            raise KeystoreError(f"keystore file has an unknown format: {path}")
        return store

    @classmethod
    def _initialise(cls, directory: Path, passphrase: str | None) -> tuple[dict[str, Any], bytes]:
        if passphrase is not None:
            salt = random_source.token_bytes(16)
            kdf = {"kind": "scrypt", "salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
            kek = cls._derive(passphrase, kdf)
        else:
            kdf = {"kind": "keyfile", "file": MASTER_KEY_FILE}
            kek = cls._create_master_key(directory / MASTER_KEY_FILE)
        nonce = random_source.token_bytes(12)
        check = AESGCM(kek).encrypt(nonce, _CHECK_PLAINTEXT, b"check")
        store = {
            "version": FORMAT_VERSION,
            "kdf": kdf,
            "check": {"nonce": _b64(nonce), "ct": _b64(check)},
            "secrets": {},
            "signing": {},
        }
        cls._write_store(directory, store)
        return store, kek

    @staticmethod
    def _create_master_key(path: Path) -> bytes:
        key = random_source.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeystoreError(f"a key file exists without a keystore file in {path.parent}") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        return key

    @staticmethod
    def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
        scrypt = Scrypt(salt=_unb64(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))
        return scrypt.derive(passphrase.encode("utf-8"))

    @classmethod
    def _unlock(cls, directory: Path, store: dict[str, Any], passphrase: str | None) -> bytes:
        kind = store.get("kdf", {}).get("kind")
        if kind == "scrypt":
            if passphrase is None:
                raise KeystoreError("the keystore is protected by a passphrase; none was given")
            kek = cls._derive(passphrase, store["kdf"])
        elif kind == "keyfile":
            if passphrase is not None:
                raise KeystoreError("the keystore is unlocked by its key file; a passphrase was given")
            key_file = directory / MASTER_KEY_FILE
            try:
                kek = key_file.read_bytes()
            except OSError:
                raise KeystoreError(f"keystore key file is missing or unreadable: {key_file}") from None
            if len(kek) != 32:
                raise KeystoreError(f"keystore key file is damaged: {key_file}")
        else:
            raise KeystoreError("keystore file names an unknown key-encryption scheme")
        check = store.get("check", {})
        try:
            AESGCM(kek).decrypt(_unb64(check["nonce"]), _unb64(check["ct"]), b"check")
        except (InvalidTag, KeyError, ValueError):
            raise KeystoreError("wrong passphrase or key file for this keystore") from None
        return kek

    @staticmethod
    def _write_store(directory: Path, store: dict[str, Any]) -> None:
        path = directory / STORE_FILE
        atomic_write_text(path, json.dumps(store, indent=1, sort_keys=True))
        os.chmod(path, 0o600)

    # ----- sealing -------------------------------------------------------------------
    def _seal(self, plaintext: bytes, aad: str) -> dict[str, str]:
        nonce = random_source.token_bytes(12)
        return {"nonce": _b64(nonce), "ct": _b64(self._kek.encrypt(nonce, plaintext, aad.encode()))}

    def _unseal(self, sealed: dict[str, str], aad: str) -> bytes:
        try:
            return self._kek.decrypt(_unb64(sealed["nonce"]), _unb64(sealed["ct"]), aad.encode())
        except (InvalidTag, KeyError, ValueError):
            raise KeystoreError(f"keystore item {aad} is damaged or was moved") from None

    @staticmethod
    def _check_name(name: str) -> None:
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise KeystoreError("key names use letters, digits, '-', '_' and '.', at most 64 characters")

    # ----- secrets -------------------------------------------------------------------
    def secret(self, name: str) -> bytes:
        """A 32-byte secret, created on first use (surrogate keys, document-id hashing)."""
        self._check_name(name)
        if name in self._secrets:
            return self._secrets[name]
        aad = f"secret/{name}"
        with self._lock:
            store = self._load()
            sealed = store["secrets"].get(name)
            if sealed is None:
                value = random_source.token_bytes(SECRET_BYTES)
                store["secrets"][name] = self._seal(value, aad)
                self._write_store(self.directory, store)
            else:
                value = self._unseal(sealed, aad)
        self._secrets[name] = value
        return value

    # ----- signing keys --------------------------------------------------------------
    def signing_key(self, name: str = "ledger") -> Ed25519PrivateKey:
        """The current Ed25519 key of that name, created on first use."""
        self._check_name(name)
        if name in self._signing:
            return self._signing[name]
        with self._lock:
            store = self._load()
            versions = store["signing"].get(name)
            if not versions:
                key = self._add_signing_key(store, name)
                self._write_store(self.directory, store)
            else:
                current = versions[-1]
                raw = self._unseal(current["private"], f"signing/{name}/{current['key_id']}")
                key = Ed25519PrivateKey.from_private_bytes(raw)
        self._signing[name] = key
        return key

    def _add_signing_key(self, store: dict[str, Any], name: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        kid = key_id(key.public_key())
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public_pem = _public_pem(key.public_key()).decode("ascii")
        store["signing"].setdefault(name, []).append(
            {
                "key_id": kid,
                "public_pem": public_pem,
                "binding": self._binding(name, kid, public_pem),
                "private": self._seal(raw, f"signing/{name}/{kid}"),
                "created": _now(),
                "retired": None,
            }
        )
        return key

    def _binding(self, name: str, kid: str, public_pem: str) -> str:
        message = f"{name}\n{kid}\n{public_pem}".encode()
        return hmac.new(self._binding_key, message, hashlib.sha256).hexdigest()

    def _bound(self, name: str, version: dict[str, Any]) -> KeyInfo:
        """One listed key, after checking that this keystore listed it and that its id is its own."""
        try:
            kid, pem, binding = str(version["key_id"]), str(version["public_pem"]), str(version["binding"])
            genuine = hmac.compare_digest(binding, self._binding(name, kid, pem))
            genuine = genuine and [key_id(k) for k in load_public_keys(pem.encode("ascii"))] == [kid]
        except (KeyError, TypeError, UnicodeEncodeError, KeystoreError):
            genuine = False
        if not genuine:
            listed = version.get("key_id") if isinstance(version, dict) else None
            shown = listed if isinstance(listed, str) and len(listed) == KEY_ID_HEX and listed.isalnum() else "?"
            raise KeystoreError(
                f"the keystore lists a '{name}' key ({shown}) that it did not create: keystore.json was "
                "edited by someone without the key; nothing signed with that key can be trusted"
            )
        return KeyInfo(name, kid, pem.encode("ascii"), version["created"], version["retired"])

    def rotate(self, name: str = "ledger") -> str:
        """Replace the current key with a new one; returns the new key id.

        The retired key's private half is destroyed; its public half stays listed so
        everything it signed still verifies.
        """
        self._check_name(name)
        with self._lock:
            store = self._load()
            for version in store["signing"].get(name, []):
                if version["retired"] is None:
                    version["retired"] = _now()
                    version["private"] = None
            key = self._add_signing_key(store, name)
            self._write_store(self.directory, store)
        self._signing[name] = key
        return key_id(key.public_key())

    def keys(self, name: str = "ledger") -> list[KeyInfo]:
        """All versions of a signing key, oldest first; empty if it was never created.

        Listing never creates a key: a verifier must not mint the key it is meant to check.
        """
        self._check_name(name)
        with self._lock:
            versions = self._load()["signing"].get(name, [])
        return [self._bound(name, version) for version in versions]

    def public_keys(self, name: str = "ledger") -> list[Ed25519PublicKey]:
        """Current and retired public keys: what a verifier of old and new signatures needs."""
        return [key for info in self.keys(name) for key in load_public_keys(info.public_pem)]

    def public_key_pem(self, name: str = "ledger") -> bytes:
        """PEM of the current public key."""
        return _public_pem(self.signing_key(name).public_key())

    def key_id(self, name: str = "ledger") -> str:
        return key_id(self.signing_key(name).public_key())

    def export_public_key(self, name: str, path: Path) -> Path:
        """Write every public key of ``name`` (current last) as one PEM file for auditors."""
        self.signing_key(name)
        infos = self.keys(name)
        text = "".join(
            f"# key {info.key_id} created {info.created}"
            + (f" retired {info.retired}" if info.retired else " (current)")
            + "\n"
            + info.public_pem.decode("ascii")
            for info in infos
        )
        atomic_write_text(Path(path), text)
        return Path(path)

    def _load(self) -> dict[str, Any]:
        store = self._read_store(self.directory)
        if store is None:
            raise KeystoreError(f"keystore file disappeared from {self.directory}")
        return store
