"""What the API needs from outside ``serve``, handed to ``create_app`` by whoever starts it.

``serve`` sits below the orchestrator: it never reads the appliance's settings file or imports
``appliance``. The appliance builds one :class:`ServeContext` (``appliance.serving``) and tests
build their own, so the API's inputs are visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deid.config import DeidConfig
from serve.audit.service import LedgerTarget
from serve.config import ServeConfig
from serve.embeddings.protocol import TextEmbedder
from serve.grounding import Grounding


@dataclass(frozen=True)
class ServeContext:
    """``grounding`` is the knowledge base (None: answers are not grounded); ``embedder`` serves
    /v1/embeddings (None: 404 there); ``deid`` configures prompt screening when ``config.detect_phi``."""

    config: ServeConfig
    model_path: Path
    api_keys_file: Path
    ledger: LedgerTarget
    feedback_home: Path
    deid: DeidConfig
    grounding: Grounding | None = None
    embedder: TextEmbedder | None = None
