"""Shared fixtures. Everything a test needs is made here or shipped in the repo; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.egress import enforce_offline_environment

enforce_offline_environment()


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama (Hugging Face directory, safetensors) with a ChatML tokenizer."""
    from tests.support.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture()
def appliance_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated appliance home for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("APPLIANCE_HOME", str(home))
    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    return home
