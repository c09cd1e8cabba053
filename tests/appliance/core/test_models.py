from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.model_source import resolve_base_model
from deid.errors import ModelError
from serve.engine.gguf_file import check_gguf_file, embedded_model_path


@pytest.fixture()
def small_gguf(tmp_path: Path) -> Path:
    import gguf

    path = tmp_path / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "small")
    writer.add_token_list(["a", "b", "c"])
    writer.add_tensor("token_embd.weight", np.ones((8, 64), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_whole_gguf_passes(small_gguf: Path) -> None:
    assert check_gguf_file(small_gguf) == small_gguf
    assert check_gguf_file(embedded_model_path()).name.endswith(".gguf")


def test_truncated_corrupt_and_missing_files_are_named(small_gguf: Path, tmp_path: Path) -> None:
    data = small_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelError, match="truncated GGUF file"):
        check_gguf_file(cut)
    tables = tmp_path / "tables.gguf"
    tables.write_bytes(data[:40])
    with pytest.raises(ModelError, match="corrupt or truncated"):
        check_gguf_file(tables)
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="bad header"):
        check_gguf_file(noise)
    with pytest.raises(ModelError, match="not found"):
        check_gguf_file(tmp_path / "missing.gguf")
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_base_model(tmp_path)


def test_serving_a_truncated_model_fails_fast_with_one_line(small_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(small_gguf.read_bytes()[:-100])
    env = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "serve", "--model", str(cut), "--port", "1"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 4
    assert done.stderr.strip().splitlines() == [f"error: truncated GGUF file (tensor data is missing): {cut}"]
