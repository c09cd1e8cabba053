"""Verify (and optionally extract) a signed appliance bundle using only the Python standard library.

Why standard library only: on a fresh air-gapped server nothing from the bundle may run before the
bundle is proven authentic, so this file (with ``ed25519.py`` beside it) is the whole trusted base.
``appliance bundle verify`` imports the same module, so the installer and the CLI run one check.

What is checked, in one sequential pass over the uncompressed tar:
- the last two members are ``<root>/manifest.json`` and ``<root>/manifest.sig``; the signature is an
  Ed25519 signature of the manifest bytes by the given public key;
- every other member is a plain file or directory under ``<root>/`` with a safe name, is listed in the
  manifest with the same sha256 and size, and every listed file is present (no extra, no missing);
- the sha256 of all archive bytes before the manifest (headers and padding included) equals the
  manifest's ``payload_sha256``, the two manifest headers are canonical and everything after the
  signature is zero padding: so *any* changed byte of the archive is refused, not only file content.
Compressed bundles (gzip, zstd) are first decompressed into a private temporary file.

Trust anchor: the public key must come from outside the bundle (the release key's PEM, carried
separately, or the key recorded by the previous install). A copy of this verifier inside a bundle
cannot vouch for that bundle against a deliberate attacker; hospital IT compares this file's sha256
with the value published with the release before the first install (upgrades use the installed copy).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import IO, Any, BinaryIO

# The sha256 of ed25519.py: checking this one file's hash out of band then vouches for both.
# tests/appliance/bundle/test_signing.py fails when ed25519.py changes and this pin does not.
ED25519_SHA256 = "fbeabfc38a7d3407ea528e9696329d567e548506426973bcaaa0e846ec5cdd44"


def _load_pinned_sibling(name: str, sha256: str) -> ModuleType:
    """Load a module beside this file by path (the installer runs ``python3 -I``), only if its hash matches."""
    path = Path(__file__).with_name(f"{name}.py")
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise SystemExit(f"REFUSED: {path.name} beside the verifier is missing or altered")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"REFUSED: cannot load {path.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __package__:
    from . import ed25519
else:  # run as a script from the bundle's installer directory
    ed25519 = _load_pinned_sibling("ed25519", ED25519_SHA256)

FORMAT = "medical-appliance-bundle/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Wheels and GGUF files are compressed already: a real bundle unpacks to little more than its size.
MAX_EXPANSION = 8
MIN_UNPACKED_LIMIT = 64 << 20


class BundleRejected(Exception):
    """The bundle is not authentic or not intact; the message says why (no file content in it)."""


def key_fingerprint(raw_public_key: bytes) -> str:
    """What an operator compares by eye or in a change ticket: sha256 of the raw 32-byte key."""
    return hashlib.sha256(raw_public_key).hexdigest()


def _unpacked_limit(bundle: Path, max_unpacked_bytes: int | None) -> int:
    if max_unpacked_bytes is not None:
        return max_unpacked_bytes
    return max(MAX_EXPANSION * bundle.stat().st_size, MIN_UNPACKED_LIMIT)


def _too_large(limit: int) -> BundleRejected:
    return BundleRejected(
        f"the bundle unpacks to more than {limit} bytes, far more than a real bundle; refused before its signature "
        "could be checked (pass --max-unpacked-bytes to allow a larger one)"
    )


def _copy_capped(source: IO[bytes] | gzip.GzipFile, sink: IO[bytes], limit: int) -> None:
    written = 0
    while chunk := source.read(CHUNK):
        written += len(chunk)
        if written > limit:
            raise _too_large(limit)
        sink.write(chunk)


def _uncompressed(bundle: Path, scratch: Path, max_unpacked_bytes: int | None = None) -> Path:
    """The bundle as a seekable plain tar; compressed input is decompressed into ``scratch``.

    The manifest and its signature sit inside the tar, so a compressed bundle must be unpacked
    before anything in it can be trusted; the unpacked size is capped so that a small hostile file
    cannot fill the disk first.
    """
    with open(bundle, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(GZIP_MAGIC):
        target = scratch / "bundle.tar"
        limit = _unpacked_limit(bundle, max_unpacked_bytes)
        try:
            with gzip.open(bundle, "rb") as source, open(target, "wb") as sink:
                _copy_capped(source, sink, limit)
        except (OSError, EOFError, zlib.error) as error:
            raise BundleRejected(f"corrupt gzip stream: {error}") from None
        return target
    if magic == ZSTD_MAGIC:
        target = scratch / "bundle.tar"
        if shutil.which("zstd") is None:
            raise BundleRejected("the bundle is zstd-compressed but the zstd command is not installed")
        limit = _unpacked_limit(bundle, max_unpacked_bytes)
        with open(target, "wb") as sink:
            process = subprocess.Popen(["zstd", "-dcq", str(bundle)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert process.stdout is not None
            try:
                _copy_capped(process.stdout, sink, limit)
            except BaseException:
                process.kill()
                raise
            finally:
                process.stdout.close()
                returncode = process.wait()
        if returncode != 0:
            raise BundleRejected("corrupt zstd stream")
        return target
    return bundle


def _safe_relative(name: str, root: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != root:
        raise BundleRejected(f"unsafe member name in archive: {name!r}")
    return PurePosixPath(*path.parts[1:]).as_posix() if len(path.parts) > 1 else ""


def _copy_span(handle: BinaryIO, length: int, *digests: Any, sink: BinaryIO | None = None) -> None:
    while length > 0:
        block = handle.read(min(CHUNK, length))
        if not block:
            raise BundleRejected("archive truncated")
        for digest in digests:
            digest.update(block)
        if sink is not None:
            sink.write(block)
        length -= len(block)


def _check_signature(manifest_bytes: bytes, signature: bytes, public_key_pem: bytes) -> bytes:
    try:
        raw_key = ed25519.public_key_from_pem(public_key_pem)
        signature_bytes = bytes.fromhex(signature.decode("ascii"))
        if signature != (signature_bytes.hex() + "\n").encode():
            raise ValueError("signature file is not in canonical form")
        ed25519.verify(raw_key, signature_bytes, manifest_bytes)
    except (ed25519.InvalidSignature, ValueError, UnicodeDecodeError) as error:
        raise BundleRejected(f"manifest signature invalid for this public key ({error})") from None
    return raw_key


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    if extracted is None:
        raise BundleRejected(f"{member.name} is not a regular file")
    return extracted.read()


def _check_canonical_header(handle: BinaryIO, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    handle.seek(member.offset)
    raw = handle.read(member.offset_data - member.offset)
    if raw != member.tobuf(tar.format, tar.encoding, tar.errors):
        raise BundleRejected(f"archive header of {member.name} was altered")


def _check_zero(handle: BinaryIO, start: int, end: int | None = None) -> None:
    """Padding is not covered by any hash, so it must be exactly what tar writes: zeros."""
    handle.seek(start)
    left = None if end is None else end - start
    while block := handle.read(CHUNK if left is None else min(CHUNK, left)):
        if block.strip(b"\0"):
            raise BundleRejected("unexpected bytes in the archive padding around the manifest")
        if left is not None:
            left -= len(block)
            if left <= 0:
                break


def verify(
    bundle: Path, public_key_pem: bytes, extract_to: Path | None = None, max_unpacked_bytes: int | None = None
) -> dict[str, Any]:
    """Check the bundle completely; with ``extract_to``, also unpack it there (only if it checks out).

    Returns the parsed manifest. Raises :class:`BundleRejected` on any problem; a partial
    extraction is removed before raising. ``max_unpacked_bytes`` caps a compressed bundle's
    unpacked size (default: ``MAX_EXPANSION`` times its size).
    """
    if not bundle.is_file():
        raise BundleRejected(f"bundle not found: {bundle}")
    with tempfile.TemporaryDirectory(prefix="bundle-verify-") as scratch:
        os.chmod(scratch, 0o700)
        plain = _uncompressed(bundle, Path(scratch), max_unpacked_bytes)
        manifest = _verify_plain(plain, public_key_pem)
        if extract_to is not None:
            try:
                _extract(plain, manifest, extract_to)
            except BaseException:
                shutil.rmtree(extract_to, ignore_errors=True)
                raise
    return manifest


def _members(tar_path: Path) -> tuple[tarfile.TarFile, list[tarfile.TarInfo]]:
    try:
        tar = tarfile.open(tar_path, "r:")  # noqa: SIM115 - returned open; the caller's with block closes it
        return tar, tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BundleRejected(f"not a readable bundle archive ({type(error).__name__})") from None


def _verify_plain(tar_path: Path, public_key_pem: bytes) -> dict[str, Any]:
    tar, members = _members(tar_path)
    with tar, open(tar_path, "rb") as handle:
        if len(members) < 3:
            raise BundleRejected("archive holds no manifest")
        *payload, manifest_member, signature_member = members
        root = PurePosixPath(manifest_member.name).parts[0]
        if manifest_member.name != f"{root}/{MANIFEST_NAME}" or signature_member.name != f"{root}/{SIGNATURE_NAME}":
            raise BundleRejected("the manifest and its signature must be the archive's last two members")
        if not (manifest_member.isreg() and signature_member.isreg()):
            raise BundleRejected("manifest members must be regular files")
        manifest_bytes = _read_member(tar, manifest_member)
        raw_key = _check_signature(manifest_bytes, _read_member(tar, signature_member), public_key_pem)
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            raise BundleRejected("signed manifest is not JSON") from None
        if manifest.get("format") != FORMAT or manifest.get("root") != root:
            raise BundleRejected(f"unsupported bundle format {manifest.get('format')!r}")
        listed: dict[str, dict[str, Any]] = manifest["files"]
        seen: set[str] = set()
        payload_digest = hashlib.sha256()
        position = 0
        handle.seek(0)
        for member in payload:
            relative = _safe_relative(member.name, root)
            if member.isdir():
                _copy_span(handle, member.offset_data - position, payload_digest)
                position = member.offset_data
                continue
            if not member.isreg():
                raise BundleRejected(f"archive member is not a plain file: {member.name}")
            if relative not in listed:
                raise BundleRejected(f"file not listed in the signed manifest: {relative}")
            if relative in seen:
                raise BundleRejected(f"file appears twice in the archive: {relative}")
            seen.add(relative)
            _copy_span(handle, member.offset_data - position, payload_digest)
            file_digest = hashlib.sha256()
            _copy_span(handle, member.size, payload_digest, file_digest)
            position = member.offset_data + member.size
            expected = listed[relative]
            if member.size != expected["size"] or file_digest.hexdigest() != expected["sha256"]:
                raise BundleRejected(f"file content does not match the signed manifest: {relative}")
        missing = sorted(set(listed) - seen)
        if missing:
            raise BundleRejected(f"file listed in the signed manifest is missing: {missing[0]} ({len(missing)} missing)")
        _copy_span(handle, manifest_member.offset - position, payload_digest)
        if manifest_member.offset != manifest["payload_bytes"] or payload_digest.hexdigest() != manifest["payload_sha256"]:
            raise BundleRejected("archive bytes outside the listed files were altered")
        for member in (manifest_member, signature_member):
            _check_canonical_header(handle, tar, member)
        _check_zero(handle, manifest_member.offset_data + manifest_member.size, signature_member.offset)
        _check_zero(handle, signature_member.offset_data + signature_member.size)
        manifest["key_fingerprint_verified"] = key_fingerprint(raw_key)
        return manifest


def _extract(tar_path: Path, manifest: dict[str, Any], target: Path) -> None:
    """Unpack the listed files, hashing each again while writing (the file could change after checking)."""
    if target.exists() and any(target.iterdir()):
        raise BundleRejected(f"extraction directory is not empty: {target}")
    target.mkdir(parents=True, exist_ok=True)
    root = manifest["root"]
    listed: dict[str, dict[str, Any]] = manifest["files"]
    tar, members = _members(tar_path)
    written: set[str] = set()
    with tar, open(tar_path, "rb") as handle:
        for member in members:
            relative = _safe_relative(member.name, root)
            if relative not in listed:
                continue
            if relative in written or not member.isreg():
                raise BundleRejected(f"archive changed while extracting: {relative}")
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            handle.seek(member.offset_data)
            digest = hashlib.sha256()
            with open(destination, "xb") as sink:
                _copy_span(handle, member.size, digest, sink=sink)
            if digest.hexdigest() != listed[relative]["sha256"] or destination.stat().st_size != listed[relative]["size"]:
                raise BundleRejected(f"file changed while extracting: {relative}")
            os.chmod(destination, 0o755 if listed[relative].get("executable") else 0o644)
            written.add(relative)
    missing = sorted(set(listed) - written)
    if missing:
        raise BundleRejected(f"file listed in the signed manifest did not arrive: {missing[0]} ({len(missing)} missing)")
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a signed medical-appliance bundle (standard library only).")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--public-key", type=Path, required=True, help="the release public key (PEM), from a trusted channel")
    parser.add_argument("--extract", type=Path, help="unpack into this empty directory after a successful check")
    parser.add_argument(
        "--max-unpacked-bytes", type=int, help=f"largest unpacked size of a compressed bundle (default {MAX_EXPANSION}x its size)"
    )
    args = parser.parse_args(argv)
    try:
        manifest = verify(args.bundle, args.public_key.read_bytes(), args.extract, args.max_unpacked_bytes)
    except (BundleRejected, OSError) as error:
        print(f"REFUSED: {error}", file=sys.stderr)
        return 1
    print(
        f"OK: {manifest['name']} {manifest['version']} ({manifest['target']}), {len(manifest['files'])} files, "
        f"signed by key {manifest['key_fingerprint_verified'][:16]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
