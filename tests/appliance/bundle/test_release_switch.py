"""Side-by-side releases: atomic switch of ``current``, ``previous`` kept, rollback, home untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest


def _release(prefix: Path, name: str) -> Path:
    directory = prefix / "versions" / name
    (directory / "venv" / "bin").mkdir(parents=True)
    (directory / "VERSION").write_text(name)
    return directory


def test_upgrade_then_rollback_and_back(installer_module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "opt"
    home = tmp_path / "home"
    home.mkdir()
    (home / "api-keys.json").write_text("{}")
    before = sorted((path.name, path.read_bytes()) for path in home.iterdir())
    for name in ("1.0", "1.1"):
        _release(prefix, name)
    installer_module.activate(prefix, "1.0")
    assert (prefix / "current" / "VERSION").read_text() == "1.0"
    assert installer_module.active_release(prefix, "previous") is None
    installer_module.activate(prefix, "1.1")
    assert (prefix / "current" / "VERSION").read_text() == "1.1"
    assert installer_module.active_release(prefix, "previous") == "1.0"
    assert os.readlink(prefix / "current") == "versions/1.1"  # relative: the prefix can be moved or mounted elsewhere
    assert installer_module.rollback(prefix) == "1.0"
    assert (prefix / "current" / "VERSION").read_text() == "1.0"
    assert installer_module.rollback(prefix) == "1.1"
    assert installer_module.main(["status", "--prefix", str(prefix)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {"current": "1.1", "previous": "1.0", "installed": ["1.0", "1.1"]}
    assert sorted((path.name, path.read_bytes()) for path in home.iterdir()) == before
    assert not list(prefix.glob(".current.*")) and not list(prefix.glob(".previous.*"))


def test_incomplete_release_is_never_activated(installer_module: ModuleType, tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    _release(prefix, "1.0")
    broken = _release(prefix, "2.0")
    (broken / installer_module.INCOMPLETE_MARKER).touch()
    installer_module.activate(prefix, "1.0")
    with pytest.raises(installer_module.InstallError, match="not completely installed"):
        installer_module.activate(prefix, "2.0")
    assert installer_module.active_release(prefix) == "1.0"


def test_rollback_without_previous_fails_clearly(installer_module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "opt"
    _release(prefix, "1.0")
    installer_module.activate(prefix, "1.0")
    assert installer_module.main(["rollback", "--prefix", str(prefix)]) == 1
    assert "no previous release" in capsys.readouterr().err
    assert installer_module.active_release(prefix) == "1.0"
