"""Offline by construction: hub variables and an egress guard for every process that touches PHI.

The guard is a ``sys.addaudithook`` hook, so it sees every socket connect, send and name lookup
made through Python, including from libraries that keep their own reference to ``socket``:
the ``socket.connect`` (also raised by ``connect_ex``), ``socket.sendto``, ``socket.sendmsg``,
``socket.getaddrinfo``, ``socket.gethostbyname``, ``socket.gethostbyaddr`` and
``socket.getnameinfo`` audit events. Audit hooks cannot be removed, so the hook consults a
mutable :class:`EgressGuard` whose mode can change; installing twice in one process is a no-op.

It lives in ``deid`` so that de-identification worker processes, which import nothing from
the appliance, install it too (:func:`install_egress_guard` runs in every worker initializer);
the CLI and the API call :func:`go_offline` first.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from enum import StrEnum

from deid.errors import ApplianceError, ExitCode

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "WANDB_MODE": "disabled",
    "WANDB_DISABLED": "true",
    "MLFLOW_TRACKING_URI": "",
    "TOKENIZERS_PARALLELISM": "false",
}

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", ""})
# Events whose arguments are (socket, address); the address is None for a send on a connected socket.
_SOCKET_ADDRESS_EVENTS = {"socket.connect": "connect", "socket.sendto": "sendto", "socket.sendmsg": "sendmsg"}
# Events whose first argument is the host (or a (host, port) address) being looked up.
_LOOKUP_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"})


class EgressBlockedError(ApplianceError, ConnectionRefusedError):
    """Something tried to reach a non-loopback address; the appliance never does that."""

    exit_code = ExitCode.EGRESS


def enforce_offline_environment() -> None:
    """Set the variables that keep Hugging Face and friends from ever reaching a hub."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ[name] = value


class EgressMode(StrEnum):
    """``strict`` refuses non-loopback connections; ``monitor`` only counts them."""

    strict = "strict"
    monitor = "monitor"


@dataclass
class EgressGuard:
    """Counts and (in strict mode) refuses any attempt to leave the machine."""

    mode: EgressMode = EgressMode.strict
    attempts: int = 0
    blocked_targets: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, host: object, action: str) -> None:
        if is_loopback(host):
            return
        with self._lock:
            self.attempts += 1
            if len(self.blocked_targets) < 100:
                self.blocked_targets.append(f"{action} {host}")
        if self.mode is EgressMode.strict:
            raise EgressBlockedError(
                f"outbound network access refused ({action} to {host}): the appliance runs offline"
            )

    def audit(self, event: str, args: tuple[object, ...]) -> None:
        action = _SOCKET_ADDRESS_EVENTS.get(event)
        if action is not None:
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) == socket.AF_UNIX:
                return
            if address is None:  # sendmsg on a connected socket: its connect was checked
                return
            self.check(_host_of(address), action)
        elif event in _LOOKUP_EVENTS:
            self.check(_host_of(args[0]), "resolve")


def _host_of(address: object) -> object:
    if isinstance(address, tuple) and address:
        return address[0]
    return address


def is_loopback(host: object) -> bool:
    """True for loopback literals and names; everything else counts as egress."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


_installed: list[EgressGuard] = []


def install_egress_guard(mode: EgressMode = EgressMode.strict) -> EgressGuard:
    """Install the process-wide guard once and return it; later calls update its mode.

    The list above is the one piece of process state here: an audit hook lives as long as the
    interpreter, so the guard it consults must too.
    """
    if _installed:
        _installed[0].mode = mode
        return _installed[0]
    guard = EgressGuard(mode=mode)
    sys.addaudithook(guard.audit)
    _installed.append(guard)
    return guard


def installed_guard() -> EgressGuard | None:
    return _installed[0] if _installed else None


def go_offline(mode: EgressMode = EgressMode.strict) -> EgressGuard:
    """What every entry point calls first."""
    enforce_offline_environment()
    return install_egress_guard(mode)
