"""Re-packed wheels install and match the originals; the SBOM names version, licence and hash of each."""

from __future__ import annotations

import email.message
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from appliance.bundle.sbom import build_sbom, licence_of
from appliance.bundle.wheelhouse import Wheel, gather, repack, requirement_closure, wheel_metadata
from deid.errors import InputError

SMALL_DISTS = ("click", "shellingham", "typer")


@pytest.fixture(scope="module")
def repacked(tmp_path_factory: pytest.TempPathFactory) -> list[Wheel]:
    out = tmp_path_factory.mktemp("wheelhouse")
    return gather([importlib.metadata.distribution(name) for name in SMALL_DISTS], out, prebuilt_dirs=[])


def test_closure_follows_requirements_and_markers_not_extras() -> None:
    requirements = ["fastapi>=0.1", "typer", "colorama; platform_system == 'Windows'", "rich; extra == 'never'"]
    names = {canonicalize_name(dist.metadata["Name"]) for dist in requirement_closure(requirements)}
    assert {"fastapi", "starlette", "pydantic", "pydantic-core", "typer", "shellingham"} <= names
    assert "colorama" not in names and "pytest" not in names


def test_closure_refuses_absent_or_mismatching_packages() -> None:
    with pytest.raises(InputError, match="not installed"):
        requirement_closure(["no-such-package-anywhere"])
    with pytest.raises(InputError, match="does not satisfy"):
        requirement_closure(["click<1"])


def test_repacked_wheels_install_offline_with_identical_files(repacked: list[Wheel], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-index", "--no-deps",
         *[str(wheel.path) for wheel in repacked]],
        capture_output=True, text=True, env={"PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    site = next((venv / "lib").glob("python3.*/site-packages"))
    original = Path(importlib.metadata.distribution("click").locate_file("click/core.py"))
    assert hashlib.sha256((site / "click" / "core.py").read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest()
    console_script = venv / "bin" / "typer"
    assert console_script.read_text().startswith(f"#!{venv}/bin/python")
    record = (site / f"click-{importlib.metadata.version('click')}.dist-info" / "RECORD").read_text()
    assert "click/core.py,sha256=" in record and ".pyc" not in record.split("__pycache__")[0]


def test_repack_is_deterministic(tmp_path: Path) -> None:
    dist = importlib.metadata.distribution("shellingham")
    first = repack(dist, tmp_path / "a")
    second = repack(dist, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


def test_missing_wheel_without_repacking_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no wheel for 1 required packages"):
        gather([importlib.metadata.distribution("shellingham")], tmp_path, prebuilt_dirs=[], repack_missing=False)


def test_sbom_lists_every_package_with_version_licence_and_wheel_hash(repacked: list[Wheel], tmp_path: Path) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    sbom = build_sbom("1.2.3", repacked, [model], "2026-01-01T00:00:00+00:00")
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    libraries = {component["name"].lower(): component for component in sbom["components"] if component["type"] == "library"}
    assert set(libraries) == set(SMALL_DISTS)
    for wheel in repacked:
        component = libraries[wheel.name.lower()]
        assert component["version"] == importlib.metadata.version(wheel.name)
        assert component["purl"] == f"pkg:pypi/{wheel.name.lower()}@{wheel.version}"
        assert component["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(wheel.path.read_bytes()).hexdigest()}]
        licence = component["licenses"][0]
        assert licence.get("expression") or licence["license"]["name"] not in ("", "NOASSERTION")
    models = [component for component in sbom["components"] if component["type"] == "machine-learning-model"]
    assert models[0]["hashes"][0]["content"] == hashlib.sha256(model.read_bytes()).hexdigest()
    typer_deps = next(dep for dep in sbom["dependencies"] if dep["ref"].startswith("pkg:pypi/typer@"))
    assert any(ref.startswith("pkg:pypi/shellingham@") for ref in typer_deps["dependsOn"])
    assert wheel_metadata(repacked[0].path).version == repacked[0].version


def _metadata(**fields: str | list[str]) -> email.message.Message:
    message = email.message.Message()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            message[key.replace("_", "-")] = item
    return message


def test_licence_sources_in_order_of_precision() -> None:
    assert licence_of(_metadata(License_Expression="MIT OR Apache-2.0", License="whatever")) == {"expression": "MIT OR Apache-2.0"}
    assert licence_of(_metadata(License="BSD-3-Clause")) == {"license": {"name": "BSD-3-Clause"}}
    classifier = "License :: OSI Approved :: Apache Software License"
    assert licence_of(_metadata(License="UNKNOWN", Classifier=[classifier])) == {"license": {"name": "Apache Software License"}}
    assert licence_of(_metadata(License="Copyright (c) X\nPermission is hereby granted")) == {"license": {"name": "Copyright (c) X"}}
    assert licence_of(_metadata()) == {"license": {"name": "NOASSERTION"}}


def test_prebuilt_wheels_are_preferred_only_when_this_interpreter_can_install_them(repacked: list[Wheel], tmp_path: Path) -> None:
    shellingham = next(wheel for wheel in repacked if wheel.name == "shellingham")
    usable, foreign = tmp_path / "usable", tmp_path / "foreign"
    usable.mkdir(), foreign.mkdir()
    shutil.copy(shellingham.path, usable / shellingham.path.name)
    shutil.copy(shellingham.path, foreign / f"shellingham-{shellingham.version}-cp27-cp27m-win32.whl")
    dist = importlib.metadata.distribution("shellingham")
    [chosen] = gather([dist], tmp_path / "out", prebuilt_dirs=[foreign, usable], repack_missing=False)
    assert chosen.path == usable / shellingham.path.name and not chosen.repacked
    with pytest.raises(InputError):
        gather([dist], tmp_path / "out", prebuilt_dirs=[foreign], repack_missing=False)
