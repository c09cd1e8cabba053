"""A real uvicorn server on a free loopback port, in a background thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from appliance.config import ApplianceSettings
from appliance.serving import serve_context
from serve.app import create_app
from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role


@dataclass
class LiveServer:
    base_url: str
    settings: ApplianceSettings
    keys: dict[Role, str]
    server: uvicorn.Server
    app: FastAPI

    @property
    def model_id(self) -> str:
        response = httpx.get(f"{self.base_url}/v1/models", headers=self.auth(Role.clinician), timeout=10)
        return response.json()["data"][0]["id"]

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(
    settings: ApplianceSettings, ready_timeout: float = 120.0, **app_options: Any
) -> Iterator[LiveServer]:
    """``app_options`` go to ``create_app`` (e.g. an embedder)."""
    store = ApiKeyStore(settings.api_keys_file)
    keys = {role: store.create(role, "test")[0] for role in Role}
    app = create_app(serve_context(settings, **app_options))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.serve.port, log_level="warning", access_log=False,
        ssl_certfile=str(settings.serve.tls_cert) if settings.serve.tls_cert else None,
        ssl_keyfile=str(settings.serve.tls_key) if settings.serve.tls_key else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    scheme = "https" if settings.serve.tls_cert else "http"
    base = f"{scheme}://127.0.0.1:{settings.serve.port}"
    verify = str(settings.serve.tls_cert) if settings.serve.tls_cert else True
    deadline = time.monotonic() + ready_timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2, verify=verify).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not become ready")
        time.sleep(0.1)
    try:
        yield LiveServer(base, settings, keys, server, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
