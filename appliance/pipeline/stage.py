"""Run a pipeline stage atomically, with a manifest, and skip it when nothing changed.

A stage builds into a private staging directory. Only when it finishes are its artifacts
hashed, its ``manifest.json`` written, and the directory renamed to ``<workdir>/<stage>``.
A killed stage therefore never leaves a directory that looks finished; the next run starts
it again (long stages resume from checkpoints kept in ``resume_dir``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from pydantic import BaseModel, Field

from appliance import __version__
from deid.errors import StageError, WorkdirError
from deid.fileio import atomic_write_text, is_disk_full, sha256_bytes, sha256_file, sha256_tree

MANIFEST_NAME = "manifest.json"
Details = TypeVar("Details", bound=BaseModel)


class Artifact(BaseModel):
    path: str = Field(description="relative to the stage directory")
    sha256: str
    bytes: int


class StageManifest(BaseModel):
    stage: str
    appliance_version: str
    fingerprint: str
    settings: dict[str, Any]
    inputs: dict[str, str] = Field(description="input name -> sha256 (of a file, or of a tree)")
    artifacts: list[Artifact]
    details: dict[str, Any] = Field(default_factory=dict)
    started_at: str
    finished_at: str
    seconds: float

    def details_as(self, model: type[Details]) -> Details:
        """The details a stage recorded, read back through that stage's own typed model."""
        return model.model_validate(self.details)

    def artifact(self, relative: str) -> Artifact:
        for item in self.artifacts:
            if item.path == relative:
                return item
        raise KeyError(relative)


@dataclass(frozen=True)
class StageContext:
    """What a stage's build function gets: where to write, and where to keep resume state."""

    name: str
    output_dir: Path
    resume_dir: Path
    fingerprint: str


@dataclass(frozen=True)
class StageResult:
    directory: Path
    manifest: StageManifest
    skipped: bool

    def path(self, relative: str) -> Path:
        return self.directory / relative


BuildFunction = Callable[[StageContext], Mapping[str, Any] | None]


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _settings_data(settings: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(settings, BaseModel):
        return json.loads(settings.model_dump_json())
    return json.loads(json.dumps(dict(settings), default=str, sort_keys=True))


def hash_inputs(inputs: Mapping[str, Path]) -> dict[str, str]:
    hashed: dict[str, str] = {}
    for name, path in inputs.items():
        if not path.exists():
            raise StageError(f"input '{name}' does not exist: {path}")
        hashed[name] = sha256_tree(path)
    return hashed


def fingerprint_of(name: str, settings: dict[str, Any], inputs: dict[str, str]) -> str:
    payload = json.dumps(
        {"stage": name, "settings": settings, "inputs": inputs, "version": __version__},
        sort_keys=True,
    )
    return sha256_bytes(payload.encode())


def stage_dir(workdir: Path, name: str) -> Path:
    return workdir / name


def resume_dir_of(workdir: Path, name: str, fingerprint: str) -> Path:
    """Checkpoints of an unfinished run live apart from the stage, keyed by what it was run with."""
    return workdir / ".resume" / name / fingerprint[:16]


def finished_stage(workdir: Path, name: str) -> StageResult | None:
    """Another stage's finished output, for stages and commands that read it (None when absent).

    Only the artifacts' sizes are checked: hashing every GGUF on each read would cost more than
    the read; ``run_stage`` re-hashes before it trusts an output enough to skip a rebuild.
    """
    directory = stage_dir(workdir, name)
    manifest = load_manifest(directory)
    if manifest is None:
        return None
    for artifact in manifest.artifacts:
        path = directory / artifact.path
        if not path.is_file() or path.stat().st_size != artifact.bytes:
            return None
    return StageResult(directory, manifest, skipped=True)


def plan_stage(name: str, settings: BaseModel | Mapping[str, Any], inputs: Mapping[str, Path]) -> tuple[dict[str, Any], dict[str, str], str]:
    """The recorded settings, the inputs' hashes and the fingerprint ``run_stage`` would use."""
    settings_data = _settings_data(settings)
    input_hashes = hash_inputs(inputs)
    return settings_data, input_hashes, fingerprint_of(name, settings_data, input_hashes)


def follow_stage(
    workdir: Path, name: str, *, settings: BaseModel | Mapping[str, Any], inputs: Mapping[str, Path],
    build: BuildFunction, scratch: Path,
) -> StageManifest | None:
    """Run ``build`` beside the process that owns the stage (another rank of a distributed job).

    It gets the owner's fingerprint and resume folder, so it reads the same checkpoints, but writes
    its outputs into ``scratch``, which is thrown away. Returns the stage's manifest as it was before
    (None when the stage had to be built).
    """
    _, _, fingerprint = plan_stage(name, settings, inputs)
    existing = load_manifest(stage_dir(workdir, name))
    if existing is not None and existing.fingerprint == fingerprint:
        return existing
    build(StageContext(name, scratch, resume_dir_of(workdir, name, fingerprint), fingerprint))
    return None


def load_manifest(stage_dir: Path) -> StageManifest | None:
    try:
        return StageManifest.model_validate_json((stage_dir / MANIFEST_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _still_valid(stage_dir: Path, manifest: StageManifest) -> bool:
    for artifact in manifest.artifacts:
        path = stage_dir / artifact.path
        if not path.is_file() or path.stat().st_size != artifact.bytes:
            return False
        if sha256_file(path) != artifact.sha256:
            return False
    return True


def _hash_artifacts(directory: Path) -> list[Artifact]:
    return [
        Artifact(path=file.relative_to(directory).as_posix(), sha256=sha256_file(file), bytes=file.stat().st_size)
        for file in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    ]


def prepare_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise WorkdirError(f"work directory {workdir} is not writable: {error.strerror}") from None


def run_stage(
    workdir: Path,
    name: str,
    *,
    settings: BaseModel | Mapping[str, Any],
    inputs: Mapping[str, Path],
    build: BuildFunction,
    force: bool = False,
) -> StageResult:
    """Run ``build`` unless an intact output with the same fingerprint exists.

    ``build`` writes its artifacts under ``context.output_dir`` and may return details
    (counts, metrics; never record text) that go into the manifest.
    """
    prepare_workdir(workdir)
    settings_data, input_hashes, fingerprint = plan_stage(name, settings, inputs)
    final_dir = stage_dir(workdir, name)

    lock = FileLock(str(workdir / f".{name}.lock"))
    try:
        lock.acquire(timeout=1)
    except Timeout:
        raise StageError(f"stage '{name}' is already running in {workdir}") from None
    try:
        existing = load_manifest(final_dir)
        if not force and existing and existing.fingerprint == fingerprint and _still_valid(final_dir, existing):
            # A run killed between the rename and the lineage update left the stage unlisted there.
            _record_in_workdir_manifest(workdir, existing)
            return StageResult(final_dir, existing, skipped=True)

        staging_root = workdir / ".staging"
        shutil.rmtree(staging_root / name, ignore_errors=True)
        staging = staging_root / name
        staging.mkdir(parents=True)
        resume_dir = resume_dir_of(workdir, name, fingerprint)
        resume_dir.mkdir(parents=True, exist_ok=True)
        started, clock = _utc_now(), time.monotonic()
        try:
            details = build(StageContext(name, staging, resume_dir, fingerprint)) or {}
            manifest = StageManifest(
                stage=name,
                appliance_version=__version__,
                fingerprint=fingerprint,
                settings=settings_data,
                inputs=input_hashes,
                artifacts=_hash_artifacts(staging),
                details=dict(details),
                started_at=started,
                finished_at=_utc_now(),
                seconds=round(time.monotonic() - clock, 3),
            )
            atomic_write_text(staging / MANIFEST_NAME, manifest.model_dump_json(indent=2))
            _swap_into_place(staging, final_dir, workdir)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            if is_disk_full(error):
                raise WorkdirError(
                    f"disk full while running stage '{name}' in {workdir}; its partial output was discarded"
                ) from None
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(resume_dir.parent, ignore_errors=True)
        _record_in_workdir_manifest(workdir, manifest)
        return StageResult(final_dir, manifest, skipped=False)
    finally:
        lock.release()


def _swap_into_place(staging: Path, final_dir: Path, workdir: Path) -> None:
    trash = workdir / ".trash" / f"{final_dir.name}-{uuid.uuid4().hex[:8]}"
    if final_dir.exists():
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(final_dir, trash)
    os.replace(staging, final_dir)
    shutil.rmtree(trash, ignore_errors=True)


def _record_in_workdir_manifest(workdir: Path, manifest: StageManifest) -> None:
    """``<workdir>/manifest.json`` lists every finished stage: the lineage an auditor follows."""
    path = workdir / MANIFEST_NAME
    with FileLock(str(workdir / ".manifest.lock")):
        stages: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            stages = json.loads(path.read_text()).get("stages", {})
        entry = {
            "fingerprint": manifest.fingerprint,
            "finished_at": manifest.finished_at,
            "inputs": manifest.inputs,
            "artifacts": {item.path: item.sha256 for item in manifest.artifacts},
        }
        if stages.get(manifest.stage) == entry:
            return
        stages[manifest.stage] = entry
        atomic_write_text(path, json.dumps({"appliance_version": __version__, "stages": stages}, indent=2))
