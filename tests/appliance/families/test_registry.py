"""The family registry: one source of LoRA targets, GGUF architectures and exportability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from appliance.families.base import RopeScalingKind, parse_rope, rope_permute
from appliance.families.family_registry import (
    FAMILIES,
    export_family,
    exportable_model_types,
    find_family,
    lora_targets,
    read_export_shape,
    require_exportable_base,
)
from appliance.train.base_model import default_target_modules
from deid.errors import ModelError


def _config_dir(directory: Path, **config: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    base = {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 256,
    }
    (directory / "config.json").write_text(json.dumps({**base, **config}))
    return directory


def test_every_exportable_family_names_a_gguf_architecture_and_unique_model_types() -> None:
    seen: set[str] = set()
    for family in FAMILIES:
        assert not seen & set(family.model_types), family.name
        seen |= set(family.model_types)
        assert family.lora_targets
        if family.exportable:
            assert family.gguf_arch.upper() in gguf.MODEL_ARCH.__members__
    assert exportable_model_types() == [
        "gemma2", "gemma3_text", "llama", "mistral", "phi3", "qwen2", "qwen3"
    ]


def test_training_takes_lora_targets_from_the_registry() -> None:
    assert default_target_modules("phi3") == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    assert default_target_modules("Gemma3_Text") == lora_targets("gemma3_text")
    assert "gate_proj" in default_target_modules("qwen3")
    assert default_target_modules("mixtral") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_target_modules("something-new") == ["all-linear"]


def test_unknown_and_train_only_families_are_refused_for_export_with_the_list() -> None:
    with pytest.raises(ModelError, match=r"'gpt2' \(registered but not exportable\).*exportable: gemma2"):
        export_family("gpt2")
    with pytest.raises(ModelError, match=r"'falcon' \(unknown\)"):
        export_family("falcon")
    assert find_family("mixtral") is not None and not find_family("mixtral").exportable  # type: ignore[union-attr]


def test_training_refuses_an_unexportable_base_unless_allowed(tmp_path: Path) -> None:
    base = _config_dir(tmp_path / "gpt2", model_type="gpt2")
    with pytest.raises(ModelError, match=r"train\.allow_unexportable = true") as refused:
        require_exportable_base(base, allow_unexportable=False)
    assert "\n" not in str(refused.value)
    assert require_exportable_base(base, allow_unexportable=True) is None
    good = _config_dir(tmp_path / "qwen3", model_type="qwen3", head_dim=32)
    assert require_exportable_base(good, allow_unexportable=False) is find_family("qwen3")
    gguf_file = tmp_path / "model.gguf"
    gguf_file.write_bytes(b"GGUF")
    assert require_exportable_base(gguf_file, allow_unexportable=False) is None


def test_shapes_read_head_dim_partial_rotary_and_gemma_tying(tmp_path: Path) -> None:
    _family, phi = read_export_shape(_config_dir(tmp_path / "phi", model_type="phi3", partial_rotary_factor=0.75))
    assert (phi.head_dim, phi.rope_dims) == (16, 12)
    family, gemma = read_export_shape(
        _config_dir(tmp_path / "gemma", model_type="gemma2", head_dim=32, query_pre_attn_scalar=32)
    )
    assert family.gguf_arch == "gemma2" and gemma.tied_embeddings and gemma.head_dim == 32


def test_gemma_query_scale_llama_cpp_does_not_read_is_folded_into_the_queries(tmp_path: Path) -> None:
    directory = _config_dir(tmp_path / "gemma", model_type="gemma2", head_dim=32, query_pre_attn_scalar=128)
    family, shape = read_export_shape(directory)
    weight = np.ones((128, 64), dtype=np.float32)
    fold = np.sqrt(32 / 128)  # llama.cpp divides by sqrt(head_dim); the checkpoint by sqrt(128)
    assert np.allclose(family.transform("model.layers.0.self_attn.q_proj.weight", weight, shape), fold)
    assert np.allclose(family.transform("model.layers.0.self_attn.k_proj.weight", weight, shape), 1.0)
    assert np.allclose(family.transform("model.layers.0.input_layernorm.weight", np.zeros(64), shape), 1.0)
    gemma3, shape3 = read_export_shape(_config_dir(tmp_path / "g3", model_type="gemma3_text", head_dim=32))
    q_norm = gemma3.transform("model.layers.0.self_attn.q_norm.weight", np.zeros(32, dtype=np.float32), shape3)
    assert np.allclose(q_norm, np.sqrt(32 / 256))  # transformers' default scalar, folded after the +1
    assert np.allclose(gemma3.transform("model.layers.0.self_attn.q_proj.weight", weight, shape3), 1.0)


def test_rope_scaling_kinds_parse_and_unknown_ones_are_refused() -> None:
    assert parse_rope({"rope_type": "default", "rope_theta": 5e5}, 1e4).kind is RopeScalingKind.NONE
    yarn = parse_rope({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, 1e6)
    assert (yarn.kind, yarn.factor, yarn.original_context, yarn.theta) == (RopeScalingKind.YARN, 4.0, 32768, 1e6)
    assert parse_rope({"type": "linear", "factor": 2.0}, 1e4).kind is RopeScalingKind.LINEAR
    with pytest.raises(ModelError, match="'dynamic' is not supported"):
        parse_rope({"rope_type": "dynamic", "factor": 2.0}, 1e4)
    with pytest.raises(ModelError, match="LongRoPE"):
        read_export_shape_from({"model_type": "phi3", "rope_scaling": {"type": "longrope"}})


def read_export_shape_from(config: dict[str, object]) -> object:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        return read_export_shape(_config_dir(Path(scratch), **config))


def test_llama3_rope_factors_reproduce_transformers_frequencies(tmp_path: Path) -> None:
    """llama.cpp divides each plain frequency by rope_freqs; the quotient must be transformers' llama3 one."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope = {
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
    }
    config = LlamaConfig(hidden_size=512, num_attention_heads=4, num_key_value_heads=2, rope_parameters=rope)
    expected, _attention = ROPE_INIT_FUNCTIONS["llama3"](config, None)
    family, shape = read_export_shape(
        _config_dir(tmp_path / "l3", model_type="llama", hidden_size=512, rope_parameters=rope)
    )
    [(name, factors)] = family.extra_tensors(shape)
    plain = 1.0 / (500000.0 ** (np.arange(0, 128, 2) / 128))
    assert name == "rope_freqs.weight" and factors.dtype == np.float32
    assert np.allclose(plain / factors, expected.numpy(), rtol=1e-5)
    assert factors.min() == pytest.approx(1.0) and factors.max() == pytest.approx(8.0)


def test_rope_permutation_pairs_half_split_rows_per_head() -> None:
    rows = np.arange(8, dtype=np.float32).reshape(8, 1)  # two heads of four rows: [0 1 | 2 3], [4 5 | 6 7]
    assert rope_permute(rows, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def _appliance(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APPLIANCE_HOME": str(home), **(env or {})}
    environment.pop("APPLIANCE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], check=False, capture_output=True, text=True, env=environment,
        timeout=300,
    )


def test_appliance_train_refuses_an_unexportable_base_before_training(tmp_path: Path) -> None:
    base = _config_dir(tmp_path / "gpt2", model_type="gpt2")
    (base / "model.safetensors").write_bytes(b"")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    args = ("train", "--base-model", str(base), "--dataset", str(dataset), "--workdir", str(tmp_path / "work"))
    refused = _appliance(*args, home=tmp_path / "home")
    assert refused.returncode == ModelError.exit_code
    assert "model family 'gpt2'" in refused.stderr and "train.allow_unexportable" in refused.stderr
    assert not (tmp_path / "work" / "train").exists()
    allowed = _appliance(*args, home=tmp_path / "home", env={"APPLIANCE_TRAIN__ALLOW_UNEXPORTABLE": "true"})
    # Past the family check, the next thing missing is the dataset: the check no longer stops it.
    assert allowed.returncode != ModelError.exit_code and "train.jsonl" in allowed.stderr


def test_gemma3_reads_both_config_generations(tmp_path: Path) -> None:
    common = {"model_type": "gemma3_text", "head_dim": 32, "query_pre_attn_scalar": 32}
    _family, older = read_export_shape(_config_dir(
        tmp_path / "v4", **common, rope_theta=1e6, rope_local_base_freq=1e4,
        rope_scaling={"rope_type": "linear", "factor": 8.0},
    ))
    _family, newer = read_export_shape(_config_dir(tmp_path / "v5", **common, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
    }))
    assert older.rope == newer.rope and newer.rope.kind is RopeScalingKind.LINEAR and newer.rope.theta == 1e6
