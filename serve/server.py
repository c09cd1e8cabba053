"""Running the API under uvicorn: bind address, TLS, and the line that tells an operator how to call it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

import uvicorn

from serve.app import create_app
from serve.config import ServeConfig
from serve.context import ServeContext
from serve.engine.llama_model import default_model_id

EXAMPLE_QUESTION = "What are first-line treatments for hypertension?"


def base_url(config: ServeConfig) -> str:
    scheme = "https" if config.tls_cert else "http"
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{config.port}"


def curl_example(context: ServeContext) -> str:
    """A copy-paste request that works once ``APPLIANCE_API_KEY`` holds a clinician key."""
    config = context.config
    model_id = config.model_name or default_model_id(context.model_path, config.adapter)
    body = json.dumps(
        {
            "model": model_id,
            "max_tokens": min(128, config.max_tokens_limit),
            "messages": [{"role": "user", "content": EXAMPLE_QUESTION}],
        },
        ensure_ascii=False,
    )
    parts = ["curl", "-s"]
    if config.tls_cert:
        parts += ["--cacert", str(config.tls_cert)]
    parts += [f"{base_url(config)}/v1/chat/completions", "-H", "Content-Type: application/json"]
    command = " ".join(shlex.quote(part) for part in parts)
    return f'{command} -H "Authorization: Bearer $APPLIANCE_API_KEY" -d {shlex.quote(body)}'


def uvicorn_config(context: ServeContext) -> uvicorn.Config:
    config = context.config
    return uvicorn.Config(
        create_app(context),
        host=config.host,
        port=config.port,
        ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
        ssl_keyfile=str(config.tls_key) if config.tls_key else None,
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def run_server(context: ServeContext, announce: Callable[[str], None]) -> None:
    """Blocks until interrupted; the egress guard is installed by ``create_app`` before any load."""
    server = uvicorn.Server(uvicorn_config(context))
    url = base_url(context.config)
    announce(f"serving {context.model_path} at {url} (chat page at {url}/)")
    announce("create a clinician key with: appliance keys create --role clinician")
    announce(curl_example(context))
    server.run()
