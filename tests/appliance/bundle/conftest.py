"""Fixtures of the bundle tests: release keys and small signed archives built from real files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.bundle.archive import Entry, write_signed_archive

REPO_ROOT = Path(__file__).resolve().parents[3]


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def release_pem(release_key: Ed25519PrivateKey) -> bytes:
    return public_pem(release_key)


@pytest.fixture()
def payload(tmp_path: Path) -> list[Entry]:
    source = tmp_path / "payload"
    source.mkdir()
    (source / "model.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 20)
    (source / "install.sh").write_text("#!/bin/sh\necho installing\n")
    (source / "notes.txt").write_text("release notes\n")
    return [
        Entry(source / "model.gguf", "models/model.gguf"),
        Entry(source / "install.sh", "installer/install.sh", executable=True),
        Entry(source / "notes.txt", "docs/notes.txt"),
    ]


MANIFEST_FIELDS = {"root": "medical-appliance-9.9.9-cpu", "name": "medical-appliance", "version": "9.9.9", "release": "9.9.9", "target": "cpu"}


@pytest.fixture()
def signed_bundle(tmp_path: Path, payload: list[Entry], release_key: Ed25519PrivateKey) -> Path:
    out = tmp_path / "bundle.tar"
    write_signed_archive(out, payload, dict(MANIFEST_FIELDS), release_key, mtime=1_700_000_000)
    return out


@pytest.fixture(scope="session")
def installer_module() -> ModuleType:
    """packaging/install.py is a stand-alone script (no package): load it by path."""
    spec = importlib.util.spec_from_file_location("appliance_installer", REPO_ROOT / "packaging" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
