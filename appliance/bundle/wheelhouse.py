"""Gather, without network, one wheel per distribution the appliance needs on the target.

Why not ``pip download``: the bundle is built where the appliance already runs, and that machine may
itself be offline. Sources, in order: a wheelhouse the operator prepared on a connected machine
(``--wheelhouse``), the compiled llama-cpp-python cache, ``/opt/wheels``, pip's wheel cache; any
distribution still missing is *re-packed* from the installed environment (its RECORD lists every
file it installed, so the installed tree plus its metadata is the wheel again, minus byte-code and
installer bookkeeping). What runs on the target is exactly what ran here.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import os
import re
import sys
import sysconfig
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from deid.errors import InputError

APPLIANCE_DIST = "medical-appliance"
_SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Wheel:
    """A wheel file chosen for the bundle and the distribution it carries."""

    name: str
    version: str
    path: Path
    repacked: bool


def requirement_closure(requirements: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """Installed distributions that satisfy ``requirements`` and, recursively, theirs.

    Markers are evaluated for this interpreter; an absent or mismatching package is an error naming it,
    because a bundle must never ship something other than what was asked for.
    """
    found: dict[str, importlib.metadata.Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = [(text, frozenset()) for text in requirements]
    visited: set[tuple[str, frozenset[str]]] = set()
    while pending:
        text, extras = pending.pop()
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise InputError(f"unreadable requirement {text!r}") from None
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if requirement.marker is not None and not any(requirement.marker.evaluate(env) for env in environments):
            continue
        key = canonicalize_name(requirement.name)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise InputError(f"required package {requirement.name} is not installed here (pip install -c constraints.txt -e .)") from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise InputError(f"installed {requirement.name} {dist.version} does not satisfy {requirement}")
        found[key] = dist
        wanted = frozenset(requirement.extras)
        if (key, wanted) in visited:
            continue
        visited.add((key, wanted))
        pending += [(child, wanted) for child in dist.requires or []]
    return sorted(found.values(), key=lambda dist: canonicalize_name(dist.metadata["Name"]))


def candidate_dirs(extra: Iterable[Path]) -> list[Path]:
    """Directories that may already hold wheels on a build machine, most specific first."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    dirs = list(extra)
    dirs += sorted((cache / "medical-appliance" / "wheels").glob("llama-*"))
    dirs += [Path("/opt/wheels"), cache / "pip" / "wheels"]
    return [directory for directory in dirs if directory.is_dir()]


def _index_wheels(directories: Iterable[Path]) -> dict[tuple[str, str], Path]:
    """Wheels by (name, version), only those this interpreter could install (caches mix platforms)."""
    supported = set(sys_tags())
    index: dict[tuple[str, str], Path] = {}
    for directory in directories:
        for path in sorted(directory.rglob("*.whl")):
            try:
                name, version, _, tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if tags & supported:
                index.setdefault((name, str(version)), path)
    return index


def gather(
    dists: Iterable[importlib.metadata.Distribution],
    out_dir: Path,
    prebuilt_dirs: Iterable[Path],
    repack_missing: bool = True,
    compresslevel: int = 6,
    skip_missing: bool = False,
) -> list[Wheel]:
    """One wheel per distribution, found or re-packed into ``out_dir``; missing ones are an error.

    ``skip_missing`` is for partial (test) wheelhouses whose installer reuses an environment.
    """
    index = _index_wheels(prebuilt_dirs)
    wheels: list[Wheel] = []
    missing: list[str] = []
    for dist in dists:
        name, version = dist.metadata["Name"], dist.version
        found = index.get((canonicalize_name(name), str(Version(version))))
        if found is not None:
            wheels.append(Wheel(name, version, found, repacked=False))
        elif repack_missing:
            wheels.append(Wheel(name, version, repack(dist, out_dir, compresslevel), repacked=True))
        elif not skip_missing:
            missing.append(f"{name}=={version}")
    if missing:
        raise InputError(f"no wheel for {len(missing)} required packages, e.g. {', '.join(missing[:5])}")
    return wheels


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel_tag(wheel_metadata: str) -> str:
    tags = [line.split(":", 1)[1].strip() for line in wheel_metadata.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise InputError("installed WHEEL metadata names no tag")
    parts: list[list[str]] = [[], [], []]
    for tag in tags:
        for position, value in enumerate(tag.split("-")):
            if value not in parts[position]:
                parts[position].append(value)
    return "-".join(".".join(values) for values in parts)


def _console_scripts(dist: importlib.metadata.Distribution) -> set[str]:
    return {entry.name for entry in dist.entry_points if entry.group in ("console_scripts", "gui_scripts")}


def _archive_name(relative: str, site: Path, prefix: Path, data_dir: str, scripts: set[str]) -> str | None:
    """Where an installed file goes inside the wheel; None for files pip regenerates on install."""
    if not relative.startswith("../"):
        return None if "__pycache__/" in relative or relative.endswith(".pyc") else relative
    absolute = Path(os.path.normpath(site / relative))
    try:
        inside_prefix = absolute.relative_to(prefix)
    except ValueError:
        raise InputError(f"cannot re-pack a file installed outside the environment: {absolute}") from None
    scripts_dir = Path(sysconfig.get_path("scripts")).relative_to(prefix)
    if inside_prefix.parent == scripts_dir:
        return None if absolute.name in scripts else f"{data_dir}/scripts/{absolute.name}"
    return f"{data_dir}/data/{inside_prefix.as_posix()}"


def _script_bytes(data: bytes) -> bytes:
    """Installed scripts carry this machine's interpreter path; wheels carry the ``#!python`` marker."""
    first, _, rest = data.partition(b"\n")
    if first.startswith(b"#!") and b"python" in first:
        return b"#!python\n" + rest
    return data


def repack(dist: importlib.metadata.Distribution, out_dir: Path, compresslevel: int = 6) -> Path:
    """Rebuild a wheel from an installed distribution (deterministic: fixed timestamps, sorted)."""
    name, version = dist.metadata["Name"], dist.version
    files = dist.files
    wheel_metadata = dist.read_text("WHEEL")
    if files is None or wheel_metadata is None:
        raise InputError(f"{name} {version} was not installed from a wheel; provide its wheel with --wheelhouse")
    site = Path(str(dist.locate_file("")))
    prefix = Path(sys.prefix)
    info_dir = next(
        (str(item).split("/")[0] for item in files if str(item).split("/")[0].endswith(".dist-info")), None
    )
    if info_dir is None:
        raise InputError(f"{name} {version} has no .dist-info directory; provide its wheel with --wheelhouse")
    normalized = re.sub(r"[-_.]+", "_", name)
    data_dir = f"{normalized}-{version}.data"
    scripts = _console_scripts(dist)
    members: dict[str, bytes] = {}
    for item in files:
        relative = str(item)
        if relative.startswith(f"{info_dir}/") and relative.split("/", 1)[1] in _SKIPPED_METADATA:
            continue
        arcname = _archive_name(relative, site, prefix, data_dir, scripts)
        if arcname is None:
            continue
        source = Path(os.path.normpath(site / relative))
        if not source.is_file():
            raise InputError(f"{name} {version} is damaged: an installed file is missing ({relative})")
        data = source.read_bytes()
        members[arcname] = _script_bytes(data) if arcname.startswith(f"{data_dir}/scripts/") else data
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{normalized}-{version}-{_wheel_tag(wheel_metadata)}.whl"
    partial = target.with_name(f".{target.name}.partial")
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for arcname in sorted(members):
            data = members[arcname]
            info = zipfile.ZipInfo(arcname, _ZIP_EPOCH)
            info.external_attr = (0o755 if _is_executable(site, arcname, data) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            writer.writerow([arcname, _record_hash(data), len(data)])
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        info = zipfile.ZipInfo(f"{info_dir}/RECORD", _ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, record.getvalue())
    partial.replace(target)
    return target


def _is_executable(site: Path, arcname: str, data: bytes) -> bool:
    if ".data/scripts/" in arcname:
        return True
    path = site / arcname
    return path.is_file() and os.access(path, os.X_OK)


def wheel_metadata(path: Path) -> importlib.metadata.Distribution:
    """The distribution metadata inside a wheel file, read through importlib.metadata."""
    with zipfile.ZipFile(path) as archive:
        info_dirs = {name.split("/")[0] for name in archive.namelist() if name.split("/")[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise InputError(f"not a valid wheel (expected one .dist-info): {path.name}")
    return importlib.metadata.PathDistribution(zipfile.Path(path, f"{info_dirs.pop()}/"))


def wheel_members(path: Path) -> Iterator[str]:
    with zipfile.ZipFile(path) as archive:
        yield from archive.namelist()
