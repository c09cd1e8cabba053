"""CLI area 'serve': run the consultation API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import settings_from


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the root app."""
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    model: Annotated[Path | None, typer.Option("--model", help="GGUF to serve; default serve.model, else the embedded model")] = None,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter GGUF applied on top")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address; default serve.host (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port; default serve.port")] = None,
) -> None:
    """Serve the OpenAI-compatible consultation API (and the chat page at /)."""
    from appliance.kb.api_embedder import KnowledgeEmbedder
    from appliance.serving import serve_context
    from serve.server import run_server

    settings = settings_from(ctx)
    changes = {name: value for name, value in
               {"model": model, "adapter": adapter, "host": host, "port": port}.items() if value is not None}
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=changes)})
    run_server(serve_context(settings, embedder=KnowledgeEmbedder(settings.kb)), lambda line: typer.echo(line))
