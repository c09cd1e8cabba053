"""CLI area 'serve': run the consultation API, and manage its API keys."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from appliance.cli.context import console, settings_from
from appliance.kb.config import KnowledgeConfig

if TYPE_CHECKING:
    from appliance.kb.embedding import Embedder
    from serve.embeddings.protocol import Embedded

keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in the appliance home).",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the root app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


def serve(
    ctx: typer.Context,
    model: Annotated[Path | None, typer.Option("--model", help="GGUF to serve; default serve.model, else the embedded model")] = None,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter GGUF applied on top")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address; default serve.host (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port; default serve.port")] = None,
) -> None:
    """Serve the OpenAI-compatible consultation API (and the chat page at /)."""
    from appliance.serving import serve_context
    from serve.server import run_server

    settings = settings_from(ctx)
    changes = {name: value for name, value in
               {"model": model, "adapter": adapter, "host": host, "port": port}.items() if value is not None}
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=changes)})
    run_server(serve_context(settings, embedder=KnowledgeEmbedder(settings.kb)), lambda line: typer.echo(line))


class KnowledgeEmbedder:
    """``serve.embeddings.protocol.TextEmbedder`` with the knowledge base's own embedding set-up
    (same model, token cut-off and int8 layers), so an API client's vectors match the index's.

    The model loads on the first request, not at start-up: most deployments never embed.
    """

    def __init__(self, config: KnowledgeConfig) -> None:
        from appliance.kb.embedding import DIMENSIONS, embedder_signature

        self._config = config
        self._model_id = embedder_signature(config.embed_max_tokens, config.embed_int8)
        self._dimensions = DIMENSIONS
        self._embedder: Embedder | None = None
        self._tokenizer: object | None = None
        self._sha256: str | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def sha256(self) -> str | None:
        return self._sha256

    def _load(self) -> Embedder:
        if self._embedder is None:
            from transformers import AutoTokenizer

            from appliance.kb.embedding import Embedder, default_model_dir
            from deid.fileio import sha256_file

            directory = default_model_dir()
            config = self._config
            self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            self._sha256 = sha256_file(directory / "model.safetensors")
            self._embedder = Embedder(directory, max_tokens=config.embed_max_tokens, int8=config.embed_int8, threads=1)
        return self._embedder

    def embed(self, texts: list[str]) -> Embedded:
        """One request at a time: torch's thread pool is process-wide, and one embedder is loaded."""
        from serve.embeddings.protocol import Embedded

        with self._lock:
            embedder = self._load()
            vectors = embedder.encode(texts)
            counted = self._tokenizer(texts, truncation=True, max_length=self._config.embed_max_tokens)  # type: ignore[operator]
        return Embedded(vectors, sum(len(ids) for ids in counted["input_ids"]))


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help="clinician, auditor or admin")],
    label: Annotated[str, typer.Option("--label", help="A note for administrators")] = "",
) -> None:
    """Create a key; it is printed once, alone on the last line, and cannot be shown again."""
    from deid.errors import InputError
    from serve.auth.keys import ApiKeyStore
    from serve.auth.protocol import Role

    try:
        chosen = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r}; choose clinician, auditor or admin") from None
    if len(label) > 80:
        raise InputError("the label may have at most 80 characters")
    key, info = ApiKeyStore(settings_from(ctx).api_keys_file).create(chosen, label)
    console.print(f"created {info.role.value} key {info.key_id}; store it now, it is not shown again:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List keys: id, role, state, created, label (never the secret)."""
    from serve.auth.keys import ApiKeyStore

    for info in ApiKeyStore(settings_from(ctx).api_keys_file).list():
        state = "active" if info.active else f"revoked {info.revoked_at:%Y-%m-%d}"
        typer.echo(f"{info.key_id}\t{info.role.value}\t{state}\t{info.created_at:%Y-%m-%d %H:%M}\t{info.label}")


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key id from 'keys list'")]) -> None:
    """Revoke a key; running servers refuse it from their next request."""
    from serve.auth.keys import ApiKeyStore

    info = ApiKeyStore(settings_from(ctx).api_keys_file).revoke(key_id)
    typer.echo(f"revoked {info.key_id} ({info.role.value})")
