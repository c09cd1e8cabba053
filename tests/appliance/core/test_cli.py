"""The command line as scripts see it: one-line reasons, non-zero exits, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def appliance(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APPLIANCE_HOME": str(home), **(env or {})}
    environment.pop("APPLIANCE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], capture_output=True, text=True, env=environment, timeout=120
    )


def test_config_show_prints_effective_settings(tmp_path: Path) -> None:
    done = appliance("config", "show", home=tmp_path, env={"APPLIANCE_SERVE__PORT": "9911"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["serve"]["port"] == 9911
    assert shown["home"] == str(tmp_path)


def test_bad_settings_give_one_line_and_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[serve]\nport = 'not a number'\n")
    done = appliance("--config", str(bad), "config", "show", home=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: invalid settings")


def test_unparseable_toml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[serve\nport = 1\n")
    done = appliance("--config", str(bad), "config", "show", home=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "error:" in done.stderr


def test_doctor_reports_offline_and_models(tmp_path: Path) -> None:
    done = appliance("doctor", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["egress"]["outbound_refused"] is True
    assert report["egress"]["attempts_counted"] == 2
    assert report["models"]["base"].endswith(".gguf")
    assert report["llama_cpp"]["installed"] is True


def test_doctor_fails_on_a_missing_configured_model(tmp_path: Path) -> None:
    done = appliance("doctor", "--json", home=tmp_path, env={"APPLIANCE_MODELS__BASE": str(tmp_path / "nope.gguf")})
    assert done.returncode == 1
    assert "model file not found" in json.loads(done.stdout)["models"]["base_error"]
