"""The serving-memory estimate behind ``appliance doctor``, on the embedded GGUF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from serve.config import KvCacheType, ServeConfig
from serve.engine.gguf_file import embedded_model_path
from serve.engine.memory import estimate


def test_kv_cache_scales_with_slots_context_and_element_type() -> None:
    model = embedded_model_path()
    base = estimate(model, ServeConfig(parallel=3, context_length=512))
    assert base.layers == 30 and base.streams == 4 and base.weights_bytes == os.path.getsize(model)
    wider = estimate(model, ServeConfig(parallel=7, context_length=512))
    longer = estimate(model, ServeConfig(parallel=3, context_length=1024))
    assert wider.kv_cache_bytes == 2 * base.kv_cache_bytes == longer.kv_cache_bytes
    quantized = estimate(model, ServeConfig(parallel=3, context_length=512, kv_cache_type=KvCacheType.q8_0))
    assert quantized.kv_cache_bytes < 0.55 * base.kv_cache_bytes
    # SmolLM2-135M: 30 layers x 3 KV heads x (64 + 64) dims x 2 bytes per cell, 4 x 512 cells.
    assert base.kv_cache_bytes == 30 * 3 * 128 * 2 * 4 * 512


def test_doctor_says_when_the_configured_slots_do_not_fit(tmp_path: Path) -> None:
    def doctor(**serve: str) -> tuple[int, dict]:
        env = {**os.environ, "APPLIANCE_HOME": str(tmp_path)} | {f"APPLIANCE_SERVE__{k.upper()}": v for k, v in serve.items()}
        done = subprocess.run([sys.executable, "-m", "appliance", "doctor", "--json"], env=env,
                              capture_output=True, text=True, timeout=300)
        return done.returncode, json.loads(done.stdout)["serving_memory"]

    # One run (the CLI imports torch): a context no machine has room for makes doctor fail.
    code, huge = doctor(parallel="64", context_length="4000000")
    assert code == 1 and huge["fits"] is False and huge["needed_mib"] > huge["available_mib"] > 0
    parts = huge["weights_mib"] + huge["kv_cache_mib"] + huge["working_mib"] + huge["prompt_cache_mib"]
    assert abs(huge["needed_mib"] - parts) <= 2 and huge["on"] == "ram"
