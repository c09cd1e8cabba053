"""The signed manifest and the standard-library verifier: every kind of tampering is refused."""

from __future__ import annotations

import io
import json
import random
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.bundle import ed25519
from appliance.bundle.archive import Entry, write_signed_archive
from appliance.bundle.verify_bundle import BundleRejected, verify
from tests.appliance.bundle.conftest import MANIFEST_FIELDS, public_pem

ROOT = MANIFEST_FIELDS["root"]


def test_pure_python_ed25519_agrees_with_cryptography() -> None:
    rng = random.Random(7)
    for length in (0, 1, 33, 500):
        key = Ed25519PrivateKey.generate()
        message = rng.randbytes(length)
        signature = key.sign(message)
        raw = ed25519.public_key_from_pem(public_pem(key))
        ed25519.verify(raw, signature, message)
        with pytest.raises(ed25519.InvalidSignature):
            ed25519.verify(raw, signature, message + b"!")
        flipped = bytearray(signature)
        flipped[rng.randrange(64)] ^= 1 << rng.randrange(8)
        with pytest.raises(ed25519.InvalidSignature):
            ed25519.verify(raw, bytes(flipped), message)
        with pytest.raises(ed25519.InvalidSignature):
            ed25519.verify(ed25519.public_key_from_pem(public_pem(Ed25519PrivateKey.generate())), signature, message)


SMALL_ORDER_POINTS = [
    (1).to_bytes(32, "little"),  # the identity (order 1)
    (2**255 - 19 - 1).to_bytes(32, "little"),  # (0, -1), order 2
    (0).to_bytes(32, "little"),  # (sqrt(-1), 0), order 4
    ((1 << 255) | 0).to_bytes(32, "little"),  # (-sqrt(-1), 0), order 4
]


def test_small_order_keys_and_r_points_are_refused(release_key: Ed25519PrivateKey, release_pem: bytes) -> None:
    identity = SMALL_ORDER_POINTS[0]
    # The classic forgery: key = R = identity, s = 0 satisfies s*B == R + h*A for every message.
    for message in (b"release 9.9.9", b"anything at all"):
        with pytest.raises(ed25519.InvalidSignature, match="small order"):
            ed25519.verify(identity, identity + bytes(32), message)
    for point in SMALL_ORDER_POINTS:
        with pytest.raises(ed25519.InvalidSignature, match="public key is a point of small order"):
            ed25519.verify(point, release_key.sign(b"m"), b"m")
        with pytest.raises(ed25519.InvalidSignature, match="R is a point of small order"):
            ed25519.verify(ed25519.public_key_from_pem(release_pem), point + release_key.sign(b"m")[32:], b"m")


def test_non_canonical_scalar_and_bad_pem_are_refused(release_key: Ed25519PrivateKey, release_pem: bytes) -> None:
    signature = release_key.sign(b"m")
    s = int.from_bytes(signature[32:], "little") + 2**252 + 27742317777372353535851937790883648493
    with pytest.raises(ed25519.InvalidSignature, match="non-canonical"):
        ed25519.verify(ed25519.public_key_from_pem(release_pem), signature[:32] + s.to_bytes(32, "little"), b"m")
    with pytest.raises(ed25519.InvalidSignature):
        ed25519.public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_intact_bundle_verifies_and_extracts(signed_bundle: Path, release_pem: bytes, tmp_path: Path) -> None:
    manifest = verify(signed_bundle, release_pem, tmp_path / "out")
    assert set(manifest["files"]) == {"models/model.gguf", "installer/install.sh", "docs/notes.txt"}
    assert (tmp_path / "out" / "installer" / "install.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "docs" / "notes.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "out" / "models" / "model.gguf").read_bytes().startswith(b"GGUF")


def _retar(source: Path, target: Path, change: Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]) -> None:
    """Rewrite the payload (keeping the original signed manifest and signature last), as an attacker would."""
    with tarfile.open(source) as tar:
        members = [(member, tar.extractfile(member).read()) for member in tar.getmembers()]  # type: ignore[union-attr]
    payload, signed = members[:-2], members[-2:]
    change(payload)
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in payload + signed:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _replace(name: str, data: bytes) -> Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]:
    def change(payload: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        index = next(i for i, (info, _) in enumerate(payload) if info.name == f"{ROOT}/{name}")
        payload[index] = (payload[index][0], data)

    return change


def _drop(name: str) -> Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]:
    def change(payload: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        payload[:] = [item for item in payload if item[0].name != f"{ROOT}/{name}"]

    return change


def _add(name: str) -> Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]:
    def change(payload: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        payload.append((tarfile.TarInfo(name), b"#!/bin/sh\ncurl evil\n"))

    return change


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_replace("installer/install.sh", b"#!/bin/sh\nrm -rf /\n"), "file content does not match the signed manifest: installer/install.sh"),
        (_drop("docs/notes.txt"), "missing: docs/notes.txt"),
        (_add(f"{ROOT}/installer/extra.sh"), "not listed in the signed manifest: installer/extra.sh"),
        (_add("../../etc/cron.d/evil"), "unsafe member name"),
    ],
    ids=["tampered-file", "missing-file", "extra-file", "path-traversal"],
)
def test_tampered_payload_is_refused_and_nothing_extracted(
    signed_bundle: Path, release_pem: bytes, tmp_path: Path, change: Callable, reason: str
) -> None:
    forged = tmp_path / "forged.tar"
    _retar(signed_bundle, forged, change)
    with pytest.raises(BundleRejected, match=reason.replace("(", r"\(")):
        verify(forged, release_pem, tmp_path / "extracted")
    assert not (tmp_path / "extracted").exists()


def test_wrong_key_is_refused(signed_bundle: Path) -> None:
    with pytest.raises(BundleRejected, match="signature invalid"):
        verify(signed_bundle, public_pem(Ed25519PrivateKey.generate()))


def test_resigned_manifest_by_another_key_is_refused(payload: list[Entry], release_pem: bytes, tmp_path: Path) -> None:
    """An attacker can build a perfectly consistent bundle, only not with the release key."""
    forged = tmp_path / "forged.tar"
    write_signed_archive(forged, payload, dict(MANIFEST_FIELDS), Ed25519PrivateKey.generate(), mtime=0)
    with pytest.raises(BundleRejected, match="signature invalid"):
        verify(forged, release_pem)


def test_any_flipped_byte_is_refused(signed_bundle: Path, release_pem: bytes, tmp_path: Path) -> None:
    """Headers, padding, manifest, signature and tail are covered, not only file contents."""
    data = signed_bundle.read_bytes()
    with tarfile.open(signed_bundle) as tar:
        offsets = [member.offset for member in tar.getmembers()] + [member.offset_data for member in tar.getmembers()]
    positions = {0, 100, 124, 148, 257, len(data) - 1}
    for offset in offsets:
        positions.update(position for position in (offset, offset + 7, offset + 130, offset + 511) if position < len(data))
    positions.update(random.Random(3).sample(range(len(data)), 60))
    flipped = tmp_path / "flipped.tar"
    for position in sorted(positions):
        for bit in (0x01, 0x20):
            copy = bytearray(data)
            copy[position] ^= bit
            flipped.write_bytes(copy)
            with pytest.raises(BundleRejected):
                verify(flipped, release_pem)


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_compressed_bundles_verify_and_corruption_is_refused(
    suffix: str, payload: list[Entry], release_key: Ed25519PrivateKey, release_pem: bytes, tmp_path: Path
) -> None:
    if suffix == ".tar.zst" and shutil.which("zstd") is None:
        pytest.skip("the zstd command is not installed")
    out = tmp_path / f"bundle{suffix}"
    write_signed_archive(out, payload, dict(MANIFEST_FIELDS), release_key, mtime=0)
    assert verify(out, release_pem)["version"] == "9.9.9"
    data = out.read_bytes()
    corrupted = tmp_path / f"corrupted{suffix}"
    for position in (len(data) // 4, len(data) // 2, 3 * len(data) // 4, len(data) - 6):  # stream body and checksum
        copy = bytearray(data)
        copy[position] ^= 0x10
        corrupted.write_bytes(copy)
        with pytest.raises(BundleRejected):
            verify(corrupted, release_pem)


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_a_compressed_bundle_that_unpacks_too_large_is_refused_before_it_fills_the_disk(
    suffix: str, payload: list[Entry], release_key: Ed25519PrivateKey, release_pem: bytes, tmp_path: Path
) -> None:
    import gzip
    import subprocess

    if suffix == ".tar.zst" and shutil.which("zstd") is None:
        pytest.skip("the zstd command is not installed")
    out = tmp_path / f"bundle{suffix}"
    write_signed_archive(out, payload, dict(MANIFEST_FIELDS), release_key, mtime=0)
    unpacked = len(gzip.decompress(out.read_bytes())) if suffix == ".tar.gz" else len(
        subprocess.run(["zstd", "-dcq", str(out)], capture_output=True, check=True).stdout
    )
    assert verify(out, release_pem, max_unpacked_bytes=unpacked)["version"] == "9.9.9"
    with pytest.raises(BundleRejected, match="unpacks to more than"):
        verify(out, release_pem, max_unpacked_bytes=unpacked - 1)
    # A bomb: 256 MiB of zeros compress to a few hundred KiB, far past the default 8x expansion.
    bomb = tmp_path / f"bomb{suffix}"
    zeros = bytes(256 << 20)
    if suffix == ".tar.gz":
        bomb.write_bytes(gzip.compress(zeros, compresslevel=9))
    else:
        bomb.write_bytes(subprocess.run(["zstd", "-19", "-c", "-q"], input=zeros, capture_output=True, check=True).stdout)
    scratch_before = set(Path(tempfile.gettempdir()).glob("bundle-verify-*"))
    with pytest.raises(BundleRejected, match="unpacks to more than"):
        verify(bomb, release_pem)
    assert set(Path(tempfile.gettempdir()).glob("bundle-verify-*")) == scratch_before


def test_extraction_refuses_an_archive_that_lost_a_listed_file(
    signed_bundle: Path, release_pem: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive is read twice (check, then unpack); a file gone by the second read is refused."""
    from appliance.bundle import verify_bundle

    real_members = verify_bundle._members
    calls = {"n": 0}

    def second_read_drops_a_file(tar_path: Path):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        tar, members = real_members(tar_path)
        if calls["n"] == 2:
            members = [member for member in members if not member.name.endswith("notes.txt")]
        return tar, members

    monkeypatch.setattr(verify_bundle, "_members", second_read_drops_a_file)
    target = tmp_path / "extracted"
    with pytest.raises(BundleRejected, match=r"did not arrive: docs/notes\.txt"):
        verify(signed_bundle, release_pem, target)
    assert not target.exists()


def test_manifest_lists_hash_size_and_payload_digest(signed_bundle: Path, release_pem: bytes, payload: list[Entry]) -> None:
    import hashlib

    manifest = verify(signed_bundle, release_pem)
    for entry in payload:
        listed = manifest["files"][entry.arcname]
        assert listed["sha256"] == hashlib.sha256(entry.source.read_bytes()).hexdigest()
        assert listed["size"] == entry.source.stat().st_size
    with tarfile.open(signed_bundle) as tar:
        manifest_member = tar.getmembers()[-2]
        stored = json.loads(tar.extractfile(manifest_member).read())  # type: ignore[union-attr]
    assert stored["payload_bytes"] == manifest_member.offset
    assert hashlib.sha256(signed_bundle.read_bytes()[: manifest_member.offset]).hexdigest() == stored["payload_sha256"]


def test_verifier_pins_the_ed25519_module_it_loads() -> None:
    """Operators check verify_bundle.py's hash out of band; the pin extends that check to ed25519.py."""
    import hashlib

    from appliance.bundle import verify_bundle

    assert hashlib.sha256(Path(ed25519.__file__).read_bytes()).hexdigest() == verify_bundle.ED25519_SHA256


def test_script_verifier_refuses_an_altered_ed25519(signed_bundle: Path, release_pem: bytes, tmp_path: Path) -> None:
    import subprocess
    import sys

    from appliance.bundle import verify_bundle

    shutil.copy(verify_bundle.__file__, tmp_path / "verify_bundle.py")
    shutil.copy(ed25519.__file__, tmp_path / "ed25519.py")
    (tmp_path / "key.pem").write_bytes(release_pem)
    command = [sys.executable, "-I", str(tmp_path / "verify_bundle.py"), str(signed_bundle), "--public-key", str(tmp_path / "key.pem")]
    assert subprocess.run(command, capture_output=True, cwd=tmp_path).returncode == 0
    (tmp_path / "ed25519.py").write_text((tmp_path / "ed25519.py").read_text() + "\ndef verify(*args): return None\n")
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "ed25519.py beside the verifier is missing or altered" in done.stderr
