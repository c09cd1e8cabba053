"""End to end: build a signed bundle, verify it, install it with no network at all, serve one chat
answer from the installed copy, upgrade and roll back; a bundle with one flipped byte is refused by
both ``appliance bundle verify`` and the installer.

What this covers honestly: the real CLI build (own wheel built with pip, embedded SmolLM2 GGUF,
config, systemd unit, installer, SBOM, signature), the real installer path inside ``unshare -n``
(stdlib verification and extraction, venv creation, ``pip install --no-index`` of the appliance's
wheel from the bundle, configuration, ledger key, admin API key, the current/previous switch,
``appliance doctor``) and a real llama.cpp answer over loopback. To stay within the CI budget the
bundle's wheelhouse is *partial* (``--partial-wheelhouse``): the ~90 third-party wheels are taken
from this test environment's site-packages (``--reuse-site-packages``) instead of being re-packed and
installed; re-packing and installing wheels is covered by ``test_wheelhouse_sbom.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

APPLIANCE = str(Path(sys.executable).parent / "appliance")
PORT = 18431


def _no_network_namespace_reason() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs the unshare and ip commands (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return "unshare -n is not permitted here (needs root or unprivileged user namespaces)"
    return None


def _env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE_")}
    env["APPLIANCE_HOME"] = str(home)
    return env


def _offline(script: str, env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess[str]:
    """Run a bash script in a fresh network namespace: only a loopback interface, no route out.

    It runs from the output directory, not the checkout, so nothing can import the source tree.
    """
    return subprocess.run(
        ["unshare", "-n", "bash", "-euo", "pipefail", "-c", "ip link set lo up\n" + script],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=env["OUT"],
    )


def _build(out: Path, release: str, home: Path) -> None:
    done = subprocess.run(
        [APPLIANCE, "bundle", "build", "--out", str(out), "--partial-wheelhouse", "--release", release],
        capture_output=True, text=True, env=_env(home), timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "key fingerprint:" in done.stdout


def _installer_from(bundle: Path, into: Path) -> Path:
    """What an operator does first: take the installer (and verifier) out of the bundle."""
    with tarfile.open(bundle) as tar:
        members = [member for member in tar.getmembers() if "/installer/" in member.name]
        tar.extractall(into, members=members, filter="data")
    return next(into.glob("*/installer/install.sh"))


def _digest_tree(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file() and not path.name.startswith(("appliance.toml.new-", ".")) and "ledger" not in path.parts
    }


INSTALL_AND_ANSWER = r"""
if python3 -c "import socket; socket.create_connection(('192.0.2.1', 80), 2)" 2>/dev/null; then
    echo "NETWORK REACHABLE"; exit 97
fi
"$INSTALLER" install --bundle "$BUNDLE" --public-key "$PUBKEY" --prefix "$PREFIX" --home "$HOME_DIR" \
    --no-user --no-systemd --reuse-site-packages "$SITE"
export APPLIANCE_HOME="$HOME_DIR" APPLIANCE_CONFIG="$HOME_DIR/appliance.toml"
bin="$PREFIX/current/venv/bin"
"$bin/appliance" doctor --json > "$OUT/doctor.json"
"$bin/python" -c "import appliance, serve; print(appliance.__file__); print(serve.__file__)" > "$OUT/where.txt"
key=$("$bin/appliance" keys create --role clinician | tail -n1)
APPLIANCE_SERVE__THREADS=1 APPLIANCE_SERVE__PARALLEL=1 "$bin/appliance" serve --port "$PORT" > "$OUT/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
API_KEY="$key" python3 - <<'PY'
import json, os, time, urllib.request, urllib.error
base = f"http://127.0.0.1:{os.environ['PORT']}"
for _ in range(240):
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
            if response.status == 200:
                break
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    time.sleep(0.5)
else:
    raise SystemExit("server never became ready")
body = {"model": "default", "max_tokens": 12, "temperature": 0,
        "messages": [{"role": "user", "content": "Name one symptom of influenza."}]}
request = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + os.environ["API_KEY"], "Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=120) as response:
    open(os.path.join(os.environ["OUT"], "chat.json"), "w").write(response.read().decode())
PY
"""

UPGRADE_AND_ROLLBACK = r"""
"$INSTALLER" install --bundle "$BUNDLE" --public-key "$PUBKEY" --prefix "$PREFIX" --home "$HOME_DIR" \
    --no-user --no-systemd --reuse-site-packages "$SITE"
"$INSTALLER" status --prefix "$PREFIX" > "$OUT/after-upgrade.json"
"$INSTALLER" rollback --prefix "$PREFIX"
"$INSTALLER" status --prefix "$PREFIX" > "$OUT/after-rollback.json"
"""


def test_build_verify_install_offline_answer_upgrade_rollback_and_refuse_tampering(tmp_path: Path) -> None:
    reason = _no_network_namespace_reason()
    if reason:
        pytest.skip(reason)
    build_home = tmp_path / "build-home"
    first, second = tmp_path / "medical-appliance-e2e1.tar", tmp_path / "medical-appliance-e2e2.tar"
    _build(first, "0.1.0-e2e1", build_home)
    _build(second, "0.1.0-e2e2", build_home)
    public_key = first.with_name(first.name + ".pub.pem")

    verified = subprocess.run([APPLIANCE, "bundle", "verify", str(first)], capture_output=True, text=True, env=_env(build_home))
    assert verified.returncode == 0 and verified.stdout.startswith("OK: medical-appliance 0.1.0-e2e1 (cpu)"), verified.stderr

    prefix, home, out = tmp_path / "target" / "opt", tmp_path / "target" / "home", tmp_path / "out"
    out.mkdir()
    installer = _installer_from(first, tmp_path / "media")
    env = {
        **_env(build_home),
        "INSTALLER": str(installer), "BUNDLE": str(first), "PUBKEY": str(public_key), "PREFIX": str(prefix),
        "HOME_DIR": str(home), "SITE": sysconfig.get_paths()["purelib"], "OUT": str(out), "PORT": str(PORT),
    }
    done = _offline(INSTALL_AND_ANSWER, env)
    server_log = (out / "serve.log").read_text()[-2000:] if (out / "serve.log").exists() else ""
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:] + server_log
    assert "bundle verified: medical-appliance 0.1.0-e2e1" in done.stdout
    assert "Admin API key (shown once" in done.stdout
    release_dir = (prefix / "versions" / "0.1.0-e2e1").resolve()
    assert all(Path(line).resolve().is_relative_to(release_dir) for line in (out / "where.txt").read_text().split())
    doctor = json.loads((out / "doctor.json").read_text())
    assert doctor["egress"]["outbound_refused"] is True
    answer = json.loads((out / "chat.json").read_text())
    assert answer["choices"][0]["message"]["content"].strip()
    unit = (prefix / "current" / "systemd" / "medical-appliance.service.rendered").read_text()
    assert f"ExecStart={prefix}/current/venv/bin/appliance serve" in unit and "@" not in unit.split("[Unit]", 1)[1]
    assert (home / "keystore").is_dir() and (home / "appliance.toml").is_file()

    kept = _digest_tree(home)
    done = _offline(UPGRADE_AND_ROLLBACK, {**env, "BUNDLE": str(second)})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "Admin API key" not in done.stdout  # keys survive upgrades; none is made again
    assert json.loads((out / "after-upgrade.json").read_text())["current"] == "0.1.0-e2e2"
    assert json.loads((out / "after-rollback.json").read_text()) == {
        "current": "0.1.0-e2e1", "previous": "0.1.0-e2e2", "installed": ["0.1.0-e2e1", "0.1.0-e2e2"]
    }
    assert _digest_tree(home) == kept
    assert (home / "appliance.toml.new-0.1.0-e2e2").is_file()

    tampered = tmp_path / "tampered.tar"
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(data)
    refused = subprocess.run(
        [APPLIANCE, "bundle", "verify", str(tampered), "--public-key", str(public_key)], capture_output=True, text=True, env=_env(build_home)
    )
    assert refused.returncode != 0 and "bundle refused" in refused.stderr
    fresh = tmp_path / "fresh"
    done = _offline(INSTALL_AND_ANSWER, {**env, "BUNDLE": str(tampered), "PREFIX": str(fresh / "opt"), "HOME_DIR": str(fresh / "home")})
    assert done.returncode != 0 and "REFUSED" in done.stderr
    assert not (fresh / "opt" / "versions").exists() and not (fresh / "home").exists()
