"""Keeps the model and its batch engine, and swaps them atomically on reload.

A reload builds the new engine first and only then retires the old one (letting its running
requests finish), so clients see no gap and never a half-loaded model.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from serve.config import ServeConfig
from serve.engine.model import GpuPlacement, LoadedModel, default_model_id
from serve.engine.scheduler import BatchEngine, EngineStoppedError


class ModelService:
    def __init__(self, config: ServeConfig, model_path: Path, adapter_path: Path | None) -> None:
        self.config = config
        self.model_path = model_path
        self.adapter_path = adapter_path
        self.created = int(time.time())
        self._engine: BatchEngine | None = None
        self._retired: LoadedModel | None = None
        self.load_failure: str | None = None
        self._swap_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> BatchEngine:
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
        return self.config.model_name or default_model_id(self.model_path, self.adapter_path)

    @property
    def sha256(self) -> str:
        return self.engine.model.sha256 if self._engine else ""

    def load(self) -> float:
        """Blocking: load (or reload) the configured files; returns the seconds it took."""
        started = time.perf_counter()
        config = self.config
        placement = GpuPlacement(config.gpu_layers, config.main_gpu, tuple(config.tensor_split))
        model = LoadedModel.load(self.model_path, self.adapter_path, config.model_name, placement)
        engine = BatchEngine(
            model,
            parallel=config.parallel,
            context_length=config.context_length,
            batch_tokens=config.batch_tokens,
            threads=config.threads or os.cpu_count() or 1,
            queue_size=config.queue_size,
            flash_attention=config.flash_attention,
            kv_cache_type=config.kv_cache_type,
        )
        with self._swap_lock:
            old, self._engine = self._engine, engine
        if old is not None:
            old.close(drain_seconds=30.0)
            # A request may still be tokenizing with the old weights; free them one reload later.
            if self._retired is not None:
                self._retired.close()
            self._retired = old.model
        return time.perf_counter() - started

    def close(self) -> None:
        with self._swap_lock:
            old, self._engine = self._engine, None
        if old is not None:
            old.close()
            old.model.close()
        if self._retired is not None:
            self._retired.close()
            self._retired = None
