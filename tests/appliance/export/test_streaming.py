"""The converter holds about one tensor at a time, whatever the size of the checkpoint.

A 7-8B base is 15-30 GB of weights: converting it must not need that much memory. A llama
checkpoint of ~160 MB (float32) is converted in a fresh process while a thread samples the
process's anonymous resident memory (file pages of the memory-mapped safetensors are page
cache, not the converter's memory); the growth must stay far below the checkpoint's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.support.tiny_model import build_tokenizer

HIDDEN, INTERMEDIATE, LAYERS = 512, 2048, 10

_MEASURE = """
import json, sys, threading, time
from pathlib import Path
from appliance.export.gguf_convert import convert_hf_to_gguf
from appliance.export.tokenizer_gguf import read_tokenizer

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise RuntimeError("no RssAnon")

source, target = Path(sys.argv[1]), Path(sys.argv[2])
read_tokenizer(source, 400)  # imports and tokenizer caches are not what is measured
baseline, peak, done = anon_kib(), [0], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], anon_kib())
        time.sleep(0.005)

thread = threading.Thread(target=sample)
thread.start()
convert_hf_to_gguf(source, target, out_type="F16")
done.set()
thread.join()
print(json.dumps({"growth_mib": (peak[0] - baseline) / 1024}))
"""


def _write_llama(directory: Path) -> int:
    """A random llama checkpoint written straight with safetensors; returns its weight bytes."""
    from safetensors.numpy import save_file

    directory.mkdir(parents=True)
    tokenizer = build_tokenizer(directory)
    rng = np.random.default_rng(0)
    kv = HIDDEN // 2

    def matrix(rows: int, cols: int) -> np.ndarray:
        return rng.standard_normal((rows, cols), dtype=np.float32) * 0.02

    tensors: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": matrix(len(tokenizer), HIDDEN),
        "model.norm.weight": np.ones(HIDDEN, dtype=np.float32),
    }
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        tensors |= {
            f"{prefix}.self_attn.q_proj.weight": matrix(HIDDEN, HIDDEN),
            f"{prefix}.self_attn.k_proj.weight": matrix(kv, HIDDEN),
            f"{prefix}.self_attn.v_proj.weight": matrix(kv, HIDDEN),
            f"{prefix}.self_attn.o_proj.weight": matrix(HIDDEN, HIDDEN),
            f"{prefix}.mlp.gate_proj.weight": matrix(INTERMEDIATE, HIDDEN),
            f"{prefix}.mlp.up_proj.weight": matrix(INTERMEDIATE, HIDDEN),
            f"{prefix}.mlp.down_proj.weight": matrix(HIDDEN, INTERMEDIATE),
            f"{prefix}.input_layernorm.weight": np.ones(HIDDEN, dtype=np.float32),
            f"{prefix}.post_attention_layernorm.weight": np.ones(HIDDEN, dtype=np.float32),
        }
    save_file(tensors, str(directory / "model.safetensors"))
    config = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": len(tokenizer),
        "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE, "num_hidden_layers": LAYERS,
        "num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "rope_theta": 10000.0,
    }
    (directory / "config.json").write_text(json.dumps(config))
    return sum(array.nbytes for array in tensors.values())


def test_conversion_memory_stays_near_one_tensor(tmp_path: Path) -> None:
    weight_bytes = _write_llama(tmp_path / "model")
    assert weight_bytes > 150 * 2**20
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path / "model"), str(tmp_path / "model.gguf")],
        check=False, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    growth = json.loads(done.stdout.strip().splitlines()[-1])["growth_mib"]
    largest_tensor_mib = INTERMEDIATE * HIDDEN * 4 / 2**20
    # Holding the weights would grow by ~150 MiB (float32) plus their F16 copies; one tensor is 4 MiB.
    assert growth < 10 * largest_tensor_mib, growth
    assert (tmp_path / "model.gguf").stat().st_size > weight_bytes / 2 * 0.95  # F16 matrices were all written
