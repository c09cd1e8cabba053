"""Live servers on loopback, one per configuration, shared by the tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import ApplianceSettings
from appliance.kb.api_embedder import KnowledgeEmbedder
from appliance.kb.base import KnowledgeBase
from appliance.kb.config import KnowledgeConfig
from serve.config import ServeConfig
from tests.appliance.kb.conftest import MEDQUAD_SAMPLE
from tests.serve.live import LiveServer, free_port, live_server

KNOWLEDGE_PAIRS = 6


def _settings(home: Path, kb: KnowledgeConfig | None = None, **serve: object) -> ApplianceSettings:
    # One llama.cpp thread: on a shared 2-core runner, OpenMP barriers across busy cores stall for seconds.
    base = {"port": free_port(), "context_length": 512, "threads": 1, "detect_phi": False}
    return ApplianceSettings(home=home, serve=ServeConfig(**{**base, **serve}), kb=kb or KnowledgeConfig())


@pytest.fixture(scope="session")
def main_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The production shape: PHI detection on, several sequences in parallel."""
    settings = _settings(tmp_path_factory.mktemp("serve-main"), parallel=4, detect_phi=True)
    with live_server(settings) as server:
        yield server


@pytest.fixture(scope="session")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One slot, a one-place queue and small limits, so every limit is reachable quickly."""
    settings = _settings(
        tmp_path_factory.mktemp("serve-tight"),
        parallel=1,
        queue_size=1,
        rate_limit_per_minute=20,
        max_body_bytes=4096,
        max_tokens_limit=200,
        max_prompt_tokens=64,
        retry_after_s=3,
    )
    with live_server(settings) as server:
        yield server


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No rate limit and tiny generations: fuzzing and bad input should reach the handlers."""
    settings = _settings(
        tmp_path_factory.mktemp("serve-fuzz"),
        parallel=2,
        rate_limit_per_minute=0,
        max_tokens_limit=4,
        default_max_tokens=4,
        max_body_bytes=16384,
    )
    with live_server(settings) as server:
        yield server


@pytest.fixture(scope="session")
def knowledge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A knowledge base of a few MedQuAD pairs under the appliance home, loaded by the server's warm-up.

    Passages are capped so a grounded prompt fits a small context and prompt evaluation stays quick.
    """
    home = tmp_path_factory.mktemp("serve-knowledge")
    settings = _settings(
        home,
        KnowledgeConfig(top_k=3, context_chars=900),
        parallel=2,
        context_length=1024,
        max_prompt_tokens=900,
        default_max_tokens=16,
        rate_limit_per_minute=0,
    )
    source = home / "medquad.jsonl"
    lines = MEDQUAD_SAMPLE.read_text(encoding="utf-8").splitlines()[:KNOWLEDGE_PAIRS]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    knowledge = KnowledgeBase.open(settings.kb_dir, settings.kb, create=True)
    assert knowledge is not None
    knowledge.add([source])
    knowledge.close()
    # The knowledge base's own embedding set-up serves /v1/embeddings (loaded on first use only).
    with live_server(settings, embedder=KnowledgeEmbedder(settings.kb)) as server:
        yield server
