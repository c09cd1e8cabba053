"""The keystore: secrets and keys survive reopening, stay encrypted at rest, rotate without orphaning signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import multiprocessing.synchronize
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from deid.errors import KeystoreError
from deid.keystore import Keystore, key_id, keyed_hash, load_public_keys


def _raw(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def test_key_file_keystore_is_private_and_persistent(tmp_path: Path) -> None:
    directory = tmp_path / "ks"
    store = Keystore.open(directory)
    secret = store.secret("document-id")
    signing = store.signing_key()
    assert len(secret) == 32
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "keystore.json").stat().st_mode) == 0o600

    reopened = Keystore.open(directory)
    assert reopened.secret("document-id") == secret
    assert _raw(reopened.signing_key()) == _raw(signing)
    assert reopened.secret("other") != secret


def test_private_material_is_not_stored_in_clear(tmp_path: Path) -> None:
    store = Keystore.open(tmp_path / "ks", passphrase="correct horse")
    secret = store.secret("surrogates")
    raw_key = _raw(store.signing_key("release"))
    on_disk = (tmp_path / "ks" / "keystore.json").read_bytes()
    for needle in (secret, raw_key):
        assert needle not in on_disk
        assert needle.hex().encode() not in on_disk
        assert base64.b64encode(needle) not in on_disk
    assert not (tmp_path / "ks" / "master.key").exists()


def test_wrong_or_missing_passphrase_is_refused(tmp_path: Path) -> None:
    Keystore.open(tmp_path / "ks", passphrase="right").secret("x")
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore.open(tmp_path / "ks", passphrase="wrong")
    with pytest.raises(KeystoreError, match="passphrase"):
        Keystore.open(tmp_path / "ks")
    assert Keystore.open(tmp_path / "ks", passphrase="right").secret("x")


def test_swapped_ciphertexts_do_not_decrypt(tmp_path: Path) -> None:
    """Associated data binds each sealed item to its slot: moving one is detected, not silently used."""
    directory = tmp_path / "ks"
    store = Keystore.open(directory)
    store.secret("a")
    store.secret("b")
    data = json.loads((directory / "keystore.json").read_text())
    data["secrets"]["a"], data["secrets"]["b"] = data["secrets"]["b"], data["secrets"]["a"]
    (directory / "keystore.json").write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match="damaged or was moved"):
        Keystore.open(directory).secret("a")


def test_rotation_keeps_old_public_keys_and_destroys_old_private_key(tmp_path: Path) -> None:
    directory = tmp_path / "ks"
    store = Keystore.open(directory)
    old_id = store.key_id()
    new_id = store.rotate()
    assert new_id != old_id
    assert store.key_id() == new_id
    infos = Keystore.open(directory).keys()
    assert [info.key_id for info in infos] == [old_id, new_id]
    assert infos[0].retired is not None and infos[1].retired is None
    stored = json.loads((directory / "keystore.json").read_text())["signing"]["ledger"]
    assert stored[0]["private"] is None

    exported = store.export_public_key("ledger", tmp_path / "ledger.pem")
    keys = load_public_keys(exported.read_bytes())
    assert [key_id(key) for key in keys] == [old_id, new_id]


def test_key_id_is_sha256_of_raw_public_key(tmp_path: Path) -> None:
    store = Keystore.open(tmp_path / "ks")
    public = store.signing_key().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert store.key_id() == hashlib.sha256(raw).hexdigest()[:16]
    assert load_public_keys(store.public_key_pem())[0].public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == raw


def test_listing_keys_never_creates_one(tmp_path: Path) -> None:
    store = Keystore.open(tmp_path / "ks")
    assert store.keys("release") == []
    assert store.public_keys("release") == []


def test_keyed_hash_is_hmac_and_depends_on_secret() -> None:
    assert keyed_hash(b"k" * 32, "MRN-1") == hmac.new(b"k" * 32, b"MRN-1", hashlib.sha256).hexdigest()
    assert keyed_hash(b"k" * 32, "MRN-1") != keyed_hash(b"j" * 32, "MRN-1")


def test_bad_public_key_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError):
        load_public_keys(b"not a key")


def _secret_in_child(directory: str, start: multiprocessing.synchronize.Event, results: multiprocessing.Queue) -> None:
    start.wait(30)
    store = Keystore.open(Path(directory))
    results.put((store.secret("document-id").hex(), store.key_id()))


def test_two_processes_creating_the_keystore_at_once_agree(tmp_path: Path) -> None:
    """First use races are settled under the keystore lock: one secret, one key, whoever wins."""
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    children = [
        context.Process(target=_secret_in_child, args=(str(tmp_path / "ks"), start, results)) for _ in range(2)
    ]
    for child in children:
        child.start()
    start.set()
    seen = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
    assert seen[0] == seen[1]
    assert Keystore.open(tmp_path / "ks").secret("document-id").hex() == seen[0][0]


def test_listed_public_keys_are_bound_to_the_keystore(tmp_path: Path) -> None:
    """A key listed in keystore.json by someone who cannot unlock it is refused, not trusted."""
    directory = tmp_path / "ks"
    store = Keystore.open(directory)
    store.signing_key()
    store.rotate()
    assert len(Keystore.open(directory).keys()) == 2  # rotation keeps every binding valid
    stranger = Keystore.open(tmp_path / "stranger")
    stranger_info = stranger.keys()[0] if stranger.keys() else None
    assert stranger_info is None  # listing never mints a key
    stranger.signing_key()
    foreign = json.loads((tmp_path / "stranger" / "keystore.json").read_text())["signing"]["ledger"][0]
    path = directory / "keystore.json"
    original = path.read_text()

    # Copied with its binding: that binding is under the stranger's keystore key, not this one's.
    data = json.loads(original)
    data["signing"]["ledger"].insert(0, {**foreign, "private": None, "retired": foreign["created"]})
    path.write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match=f"did not create.*{foreign['key_id']}|{foreign['key_id']}.*did not create"):
        Keystore.open(directory).public_keys()

    # A genuine listing whose public key was swapped for the stranger's fails as well.
    data = json.loads(original)
    data["signing"]["ledger"][0]["public_pem"] = foreign["public_pem"]
    path.write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match="did not create"):
        Keystore.open(directory).keys()

    path.write_text(original)
    assert len(Keystore.open(directory).public_keys()) == 2
