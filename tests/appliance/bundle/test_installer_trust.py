"""The installer's trust anchor and its refusal of downgrades, run as the installer runs them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.bundle.archive import Entry, write_signed_archive
from tests.appliance.bundle.conftest import MANIFEST_FIELDS

PYTHON_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


def _bundle(tmp_path: Path, payload: list[Entry], key: Ed25519PrivateKey, version: str, created: str) -> Path:
    fields = {**MANIFEST_FIELDS, "version": version, "release": version, "created": created, "python_tag": PYTHON_TAG}
    fields["root"] = f"medical-appliance-{version}-cpu"
    out = tmp_path / f"bundle-{version}.tar"
    write_signed_archive(out, payload, fields, key, mtime=1_700_000_000)
    return out


def _install(installer: ModuleType, prefix: Path, home: Path, bundle: Path, *extra: str) -> int:
    return installer.main(["install", "--bundle", str(bundle), "--prefix", str(prefix), "--home", str(home), "--no-user", "--no-systemd", *extra])


def test_release_order_follows_versions_then_signed_build_time(installer_module: ModuleType) -> None:
    order = installer_module.release_order
    assert order({"version": "0.2.0", "created": "2026-01-01"}) > order({"version": "0.1.9", "created": "2026-06-01"})
    assert order({"version": "1.10.0"}) > order({"version": "1.9.3"})
    assert order({"version": "1.0"}) == order({"version": "1.0.0"})
    assert order({"version": "1.0.0rc1"}) < order({"version": "1.0.0"})
    assert order({"version": "0.1.0", "created": "2026-02-01T00:00:00+00:00"}) > order({"version": "0.1.0", "created": "2026-01-31T23:59:59+00:00"})


def test_an_older_release_is_refused_unless_asked_explicitly(
    installer_module: ModuleType, tmp_path: Path, payload: list[Entry], release_key: Ed25519PrivateKey, release_pem: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix, home = tmp_path / "opt", tmp_path / "home"
    trust = prefix / installer_module.TRUST_DIR
    trust.mkdir(parents=True)
    (trust / installer_module.TRUSTED_KEY_FILE).write_bytes(release_pem)
    (trust / installer_module.HIGHEST_FILE).write_text(json.dumps({"release": "0.3.0", "version": "0.3.0", "created": "2026-11-01T00:00:00+00:00"}))
    older = _bundle(tmp_path, payload, release_key, "0.2.0", "2026-12-01T00:00:00+00:00")

    assert _install(installer_module, prefix, home, older) == 1
    error = capsys.readouterr().err
    assert "older than 0.3.0" in error and "--allow-downgrade" in error
    assert not (prefix / "versions").exists() and not list(prefix.glob(".staging-*"))

    # Asked explicitly, the downgrade passes the check and goes on to the next step (which needs a
    # real wheelhouse; this test bundle has none, so that step is what refuses it now).
    assert _install(installer_module, prefix, home, older, "--allow-downgrade") == 1
    error = capsys.readouterr().err
    assert "older than" not in error and "wheelhouse is partial" in error


def test_the_trust_anchor_lives_under_the_prefix_and_must_not_be_writable_by_others(
    installer_module: ModuleType, tmp_path: Path, payload: list[Entry], release_key: Ed25519PrivateKey, release_pem: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix, home = tmp_path / "opt", tmp_path / "home"
    bundle = _bundle(tmp_path, payload, release_key, "0.5.0", "2026-12-01T00:00:00+00:00")
    # A key the service user planted in its home is never taken as the trust anchor.
    home.mkdir()
    (home / installer_module.TRUSTED_KEY_FILE).write_bytes(release_pem)
    assert _install(installer_module, prefix, home, bundle) == 1
    assert "--public-key is required" in capsys.readouterr().err

    trust = prefix / installer_module.TRUST_DIR
    trust.mkdir(parents=True)
    anchor = trust / installer_module.TRUSTED_KEY_FILE
    anchor.write_bytes(release_pem)
    os.chmod(anchor, 0o664)
    assert _install(installer_module, prefix, home, bundle) == 1
    assert "is not trusted" in capsys.readouterr().err

    os.chmod(anchor, 0o644)
    os.chmod(trust, 0o777)
    assert _install(installer_module, prefix, home, bundle) == 1
    assert "is not trusted" in capsys.readouterr().err

    os.chmod(trust, 0o755)
    assert _install(installer_module, prefix, home, bundle) == 1
    error = capsys.readouterr().err
    assert "is not trusted" not in error and "wheelhouse is partial" in error  # the anchor verified the bundle


def test_an_anchor_with_another_key_refuses_the_bundle(
    installer_module: ModuleType, tmp_path: Path, payload: list[Entry], release_key: Ed25519PrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.appliance.bundle.conftest import public_pem

    prefix, home = tmp_path / "opt", tmp_path / "home"
    trust = prefix / installer_module.TRUST_DIR
    trust.mkdir(parents=True)
    (trust / installer_module.TRUSTED_KEY_FILE).write_bytes(public_pem(Ed25519PrivateKey.generate()))
    bundle = _bundle(tmp_path, payload, release_key, "0.5.0", "2026-12-01T00:00:00+00:00")
    assert _install(installer_module, prefix, home, bundle) == 1
    assert "REFUSED" in capsys.readouterr().err
