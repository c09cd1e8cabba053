from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.config import load_settings
from deid.errors import ConfigError


def test_defaults_put_everything_under_the_home(appliance_home: Path) -> None:
    settings = load_settings()
    assert settings.home == appliance_home
    assert settings.work_dir == appliance_home / "work"
    assert settings.deid_ledger.parent == appliance_home / "ledger"


def test_toml_file_then_environment_take_precedence(appliance_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    appliance_home.mkdir(parents=True)
    (appliance_home / "appliance.toml").write_text('[serve]\nport = 9100\nhost = "0.0.0.0"\n[train]\nmax_steps = 3\n')
    settings = load_settings()
    assert (settings.serve.port, settings.serve.host, settings.train.max_steps) == (9100, "0.0.0.0", 3)

    monkeypatch.setenv("APPLIANCE_SERVE__PORT", "9200")
    assert load_settings().serve.port == 9200
    assert load_settings(serve={"port": 9300}).serve.port == 9300


def test_explicit_config_file_and_bad_values_give_clear_errors(tmp_path: Path, appliance_home: Path) -> None:
    config = tmp_path / "custom.toml"
    config.write_text("[serve]\nport = 70000\n")
    with pytest.raises(ConfigError, match=r"serve\.port"):
        load_settings(config)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
    config.write_text("[unknown_section]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown_section"):
        load_settings(config)


def test_secrets_are_masked(appliance_home: Path) -> None:
    settings = load_settings(keystore={"passphrase": "correct horse battery"})
    shown = json.dumps(settings.masked())
    assert "correct horse battery" not in shown
    assert "**********" in shown
    assert settings.keystore.passphrase.get_secret_value() == "correct horse battery"
