"""Write the signed bundle archive: payload files, then the manifest, then its signature.

The layout is what :mod:`appliance.bundle.verify_bundle` checks: every payload member is a plain
file with canonical metadata (owner root, fixed mtime, 0644/0755), the manifest lists each file's
sha256, size and executable bit plus the sha256 of every archive byte before the manifest, and the
Ed25519 signature of the manifest bytes comes last. Compression (gzip, zstd) wraps the finished tar.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.bundle.verify_bundle import FORMAT, MANIFEST_NAME, SIGNATURE_NAME
from deid.errors import InputError, WorkdirError
from deid.fileio import CHUNK, atomic_output, sha256_file


@dataclass(frozen=True)
class Entry:
    """One payload file: where it lies on the build machine and its path inside the bundle."""

    source: Path
    arcname: str
    executable: bool = False


class _HashingWriter(io.RawIOBase):
    """Counts and hashes every byte tarfile writes, so the payload hash costs no second read."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.digest = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.count

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.count += len(view)
        self._sink.write(view)
        return len(view)


def _tarinfo(arcname: str, size: int, executable: bool, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.size = size
    info.mode = 0o755 if executable else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def compression_of(path: Path) -> str:
    """``none``, ``gz`` or ``zst`` from the output name; operators choose by naming the file."""
    name = path.name
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    if name.endswith((".tar.zst", ".tzst")):
        return "zst"
    if name.endswith(".tar"):
        return "none"
    raise InputError(f"bundle name must end in .tar, .tar.gz or .tar.zst: {name}")


def write_signed_archive(
    out: Path,
    entries: Iterable[Entry],
    manifest_fields: dict[str, Any],
    signing_key: Ed25519PrivateKey,
    mtime: int,
) -> dict[str, Any]:
    """Write ``out`` atomically and return the signed manifest."""
    compression = compression_of(out)
    if compression == "zst" and shutil.which("zstd") is None:
        raise InputError("a .tar.zst bundle needs the zstd command; name the bundle .tar or .tar.gz instead")
    root = manifest_fields["root"]
    files: dict[str, dict[str, Any]] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = out if compression == "none" else out.with_name(f".{out.name}.tar.partial")
    try:
        with atomic_output(plain, "wb") as sink:
            writer = _HashingWriter(sink)
            with tarfile.open(fileobj=writer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
                for entry in sorted(entries, key=lambda item: item.arcname):
                    if entry.arcname in files:
                        raise InputError(f"two bundle files share the name {entry.arcname}")
                    size = entry.source.stat().st_size
                    files[entry.arcname] = {
                        "sha256": sha256_file(entry.source),
                        "size": size,
                        "executable": entry.executable,
                    }
                    with open(entry.source, "rb") as source:
                        tar.addfile(_tarinfo(f"{root}/{entry.arcname}", size, entry.executable, mtime), source)
                manifest = {
                    **manifest_fields,
                    "format": FORMAT,
                    "files": files,
                    "payload_bytes": writer.count,
                    "payload_sha256": writer.digest.hexdigest(),
                }
                manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
                signature = (signing_key.sign(manifest_bytes).hex() + "\n").encode()
                for name, data in ((MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, signature)):
                    tar.addfile(_tarinfo(f"{root}/{name}", len(data), False, mtime), io.BytesIO(data))
        if compression != "none":
            _compress(plain, out, compression)
        os.chmod(out, 0o644)  # a release artefact, not a secret: operators copy it as another user
    except OSError as error:
        raise WorkdirError(f"cannot write the bundle {out}: {error.strerror or error}") from None
    finally:
        if plain != out:
            plain.unlink(missing_ok=True)
    return manifest


def _compress(plain: Path, out: Path, compression: str) -> None:
    if compression == "gz":
        with (
            atomic_output(out, "wb") as sink,
            gzip.GzipFile(fileobj=sink, mode="wb", mtime=0, compresslevel=6) as zipped,
            open(plain, "rb") as source,
        ):
            shutil.copyfileobj(source, zipped, CHUNK)
        return
    with atomic_output(out, "wb") as sink:
        done = subprocess.run(
            ["zstd", "-q", "-c", "-T0", "-10", str(plain)], stdout=sink, stderr=subprocess.PIPE
        )
        if done.returncode != 0:
            raise WorkdirError("zstd failed to compress the bundle")
