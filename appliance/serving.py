"""The appliance's side of starting the API: its settings turned into a ``serve.context.ServeContext``.

Only here does the orchestrator decide what the API gets (which model file, which ledger and
keystore, whether the knowledge base grounds answers); ``serve`` never reads the settings itself.
"""

from __future__ import annotations

import socket
from pathlib import Path

from appliance.config import ApplianceSettings
from appliance.kb.grounding import KnowledgeService
from serve.audit.service import LedgerTarget
from serve.context import ServeContext
from serve.embeddings.protocol import TextEmbedder
from serve.engine.gguf_file import check_gguf_file, embedded_model_path


def served_model_path(settings: ApplianceSettings) -> Path:
    """The configured GGUF (e.g. the demo's quantized export), else the embedded model."""
    configured = settings.serve.model
    return check_gguf_file(configured) if configured is not None else embedded_model_path()


def replica_name(settings: ApplianceSettings) -> str:
    """Each replica writes its own request ledger, named after the host and port."""
    return f"{socket.gethostname()}-{settings.serve.port}"


def serve_context(
    settings: ApplianceSettings, *, replica: str | None = None, embedder: TextEmbedder | None = None
) -> ServeContext:
    """``embedder`` serves /v1/embeddings (the CLI passes the knowledge base's); None = 404 there."""
    replica = replica or replica_name(settings)
    passphrase = settings.keystore.passphrase
    ledger = LedgerTarget(
        path=settings.ledger_dir / f"api-{replica}.jsonl",
        replica=replica,
        keystore_dir=settings.keystore_dir,
        keystore_passphrase=passphrase.get_secret_value() if passphrase else None,
        signing_key_name=settings.ledger.signing_key_name,
        checkpoint_every=settings.ledger.checkpoint_every,
        refusal_window_seconds=settings.serve.refusal_window_seconds,
    )
    return ServeContext(
        config=settings.serve,
        model_path=served_model_path(settings),
        api_keys_file=settings.api_keys_file,
        ledger=ledger,
        feedback_home=settings.home,
        deid=settings.deid,
        grounding=KnowledgeService.open(settings) if settings.serve.knowledge else None,
        embedder=embedder,
    )
