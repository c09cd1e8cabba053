"""``appliance keys ...`` and ``appliance serve`` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serve.auth.keys import ApiKeyStore
from tests.serve.live import free_port

APPLIANCE = str(Path(sys.executable).with_name("appliance"))


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    return {**env, "APPLIANCE_HOME": str(home), **extra}


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([APPLIANCE, *args], capture_output=True, text=True, timeout=60, env=_env(home))


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    created = _run(tmp_path, "keys", "create", "--role", "auditor", "--label", "qa")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("mla_") and " " not in key
    store = ApiKeyStore(tmp_path / "api-keys.json")
    info = store.verify(key)
    assert info is not None and info.role.value == "auditor"
    stored = (tmp_path / "api-keys.json").read_text()
    assert key.split("_", 2)[2] not in stored, "only a salted hash is stored"
    assert oct((tmp_path / "api-keys.json").stat().st_mode & 0o777) == "0o600"

    listed = _run(tmp_path, "keys", "list")
    assert info.key_id in listed.stdout and "auditor" in listed.stdout and key not in listed.stdout
    assert _run(tmp_path, "keys", "revoke", info.key_id).returncode == 0
    assert store.verify(key) is None
    unknown = _run(tmp_path, "keys", "revoke", "nope")
    assert unknown.returncode != 0 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr
    bad_role = _run(tmp_path, "keys", "create", "--role", "root")
    assert bad_role.returncode != 0 and "clinician" in bad_role.stderr


def test_serve_prints_a_working_curl_line(tmp_path: Path) -> None:
    port = free_port()
    key = _run(tmp_path, "keys", "create", "--role", "clinician").stdout.strip().splitlines()[-1]
    env = _env(tmp_path, APPLIANCE_SERVE__DETECT_PHI="false", APPLIANCE_SERVE__THREADS="1",
               APPLIANCE_SERVE__CONTEXT_LENGTH="512", APPLIANCE_SERVE__PARALLEL="2",
               APPLIANCE_SERVE__DEFAULT_MAX_TOKENS="8", APPLIANCE_SERVE__MAX_TOKENS_LIMIT="8")
    server = subprocess.Popen([APPLIANCE, "serve", "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [server.stdout.readline() for _ in range(3)]
        curl = next(line for line in lines if line.startswith("curl "))
        assert f"http://127.0.0.1:{port}/v1/chat/completions" in curl
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not come up"
            time.sleep(0.2)
        if not any(Path(p, "curl").exists() for p in os.environ.get("PATH", "").split(os.pathsep)):
            pytest.skip("curl is not installed")
        answered = subprocess.run(["bash", "-c", curl],
                                  capture_output=True, text=True, timeout=60,
                                  env={**env, "APPLIANCE_API_KEY": key})
        assert '"chat.completion"' in answered.stdout, answered.stdout[:300]
        status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert status.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
