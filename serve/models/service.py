"""Keeps the model and its batch engine, and swaps them atomically on reload.

A reload builds the new engine first and only then retires the old one (letting its running
requests finish), so clients see no gap and never a half-loaded model. With
``serve.engine = upstream`` the "engine" is the OpenAI-compatible server on loopback: loading
starts it (when the appliance runs it) and waits for its health check; ready means healthy.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx

from serve.config import EngineKind, ServeConfig
from serve.engine.llama_model import GpuPlacement, LoadedModel, default_model_id
from serve.engine.scheduler import BatchEngine, EngineStoppedError
from serve.upstream.engine import UpstreamEngine
from serve.upstream.supervisor import EngineSupervisor


class ModelService:
    def __init__(self, config: ServeConfig, model_path: Path, adapter_path: Path | None) -> None:
        self.config = config
        self.model_path = model_path
        self.adapter_path = adapter_path
        self.created = int(time.time())
        self._engine: BatchEngine | UpstreamEngine | None = None
        self.supervisor: EngineSupervisor | None = None
        self._retired: LoadedModel | None = None
        self.load_failure: str | None = None
        self._swap_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._engine is not None and (self.supervisor is None or self.supervisor.healthy)

    @property
    def upstream(self) -> bool:
        return self.config.engine == EngineKind.upstream

    @property
    def engine(self) -> BatchEngine | UpstreamEngine:
        engine = self._engine
        if engine is None:
            raise EngineStoppedError("the model is still loading; retry shortly")
        return engine

    @property
    def model_id(self) -> str:
        """The loaded model's id, or while loading the id it will have (never an empty string)."""
        engine = self._engine
        return engine.model.model_id if engine is not None else self.configured_id

    @property
    def configured_id(self) -> str:
        if self.upstream:
            return self.config.model_name or self.config.upstream_model or ""
        return self.config.model_name or default_model_id(self.model_path, self.adapter_path)

    @property
    def sha256(self) -> str:
        return self.engine.model.sha256 if self._engine else ""

    def load(self) -> float:
        """Blocking: load (or reload) the configured files; returns the seconds it took."""
        started = time.perf_counter()
        config = self.config
        if self.upstream:
            self._load_upstream()
            return time.perf_counter() - started
        placement = GpuPlacement(config.gpu_layers, config.main_gpu, tuple(config.tensor_split))
        model = LoadedModel.load(self.model_path, self.adapter_path, config.model_name, placement)
        engine = BatchEngine(
            model,
            parallel=config.parallel,
            context_length=config.context_length,
            batch_tokens=config.batch_tokens,
            threads=config.threads or os.cpu_count() or 1,
            queue_size=config.queue_size,
            prompt_cache_bytes=config.prompt_cache_mib * 2**20,
            flash_attention=config.flash_attention,
            kv_cache_type=config.kv_cache_type,
        )
        with self._swap_lock:
            old, self._engine = self._engine, engine
        if isinstance(old, BatchEngine):  # a local engine replaces a local one: the kind is fixed by the settings
            old.close(drain_seconds=30.0)
            # A request may still be tokenizing with the old weights; free them one reload later.
            if self._retired is not None:
                self._retired.close()
            self._retired = old.model
        return time.perf_counter() - started

    def _load_upstream(self) -> None:
        """Start (once) and wait for the engine; a reload only waits for it to be healthy again."""
        config = self.config
        health_url = config.upstream_url.rstrip("/") + config.upstream_health_path
        key = config.upstream_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        if config.upstream_command and self.supervisor is None:
            self.supervisor = EngineSupervisor(config.upstream_command, health_url, config.upstream_start_timeout_s, headers)
            self.supervisor.start()
        if self.supervisor is not None:
            if not self.supervisor.wait_healthy(config.upstream_start_timeout_s):
                raise EngineStoppedError("the upstream engine did not become healthy in time")
        else:
            _wait_for(health_url, headers, config.upstream_start_timeout_s)
        with self._swap_lock:
            if self._engine is None:
                self._engine = UpstreamEngine(config, self.supervisor)

    def close(self) -> None:
        with self._swap_lock:
            old, self._engine = self._engine, None
        if isinstance(old, UpstreamEngine):
            old.close()
        elif old is not None:
            old.close()
            old.model.close()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self._retired is not None:
            self._retired.close()
            self._retired = None


def _wait_for(health_url: str, headers: dict[str, str], timeout: float) -> None:
    """An engine someone else runs: poll its health check until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(health_url, headers=headers, timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise EngineStoppedError("the upstream engine did not become healthy in time")
        time.sleep(0.5)
