"""Our HF -> GGUF converter against transformers, through the real llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from appliance.export.gguf_convert import convert_hf_to_gguf
from appliance.export.runners import LlamaCppRunner, TransformersRunner
from appliance.export.tokenizer_gguf import pre_tokenizer_name
from appliance.pipeline.stage import StageResult

PROMPTS = ["Shortness of breath for 3 days, SpO2 91% on room air.", "Plan: amoxicillin 500 mg"]


def _field(reader: gguf.GGUFReader, key: str) -> object:
    field = reader.fields[key]
    return field.contents()


def test_f32_gguf_logits_and_greedy_match_transformers(exported: StageResult) -> None:
    hf = TransformersRunner(exported.path("merged"))
    llama = LlamaCppRunner(exported.path("model-f32.gguf"), context_length=256, threads=1)
    for prompt in PROMPTS:
        ids = hf.tokenize(prompt)
        assert llama.tokenize(prompt) == ids
        assert np.abs(hf.logits(ids) - llama.logits(ids)).max() < 1e-2
        assert hf.greedy(ids, 6) == llama.greedy(ids, 6)
    llama.close()


def test_reference_gguf_metadata(exported: StageResult, tiny_hf_model: Path) -> None:
    reader = gguf.GGUFReader(exported.path("model-f32.gguf"))
    names = {tensor.name: tensor for tensor in reader.tensors}
    assert "output.weight" not in names  # tied embeddings
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in reader.tensors if len(t.shape) == 1)
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert _field(reader, "tokenizer.ggml.add_bos_token") is False
    template = (tiny_hf_model / "chat_template.jinja").read_text()
    assert _field(reader, "tokenizer.chat_template") == template
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    assert types[tokens.index("<|im_start|>")] == gguf.TokenType.CONTROL
    assert types[300] == gguf.TokenType.NORMAL and not tokens[300].startswith("[PAD")
    assert _field(reader, "tokenizer.ggml.eos_token_id") == tokens.index("<|im_end|>")
    assert len(reader.fields["tokenizer.ggml.merges"].data) > 0


def test_quantized_files_hold_real_quant_types(exported: StageResult) -> None:
    q8 = gguf.GGUFReader(exported.path("model-Q8_0.gguf"))
    matrices = [t for t in q8.tensors if t.name.startswith("blk.") and len(t.shape) == 2]
    assert matrices and all(t.tensor_type == gguf.GGMLQuantizationType.Q8_0 for t in matrices)
    q4 = gguf.GGUFReader(exported.path("model-Q4_K_M.gguf"))
    kinds = {t.tensor_type for t in q4.tensors if t.name.startswith("blk.") and len(t.shape) == 2}
    assert gguf.GGMLQuantizationType.Q4_K in kinds
    assert kinds <= {gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q6_K}
    assert exported.path("model-Q4_K_M.gguf").stat().st_size < exported.path("model-Q8_0.gguf").stat().st_size


def _tiny_family_model(family: str, directory: Path) -> Path:
    import torch
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from tests.support.tiny_model import build_tokenizer

    tokenizer = build_tokenizer(directory)
    torch.manual_seed(3)
    shapes = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
        "eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.bos_token_id,
    }
    if family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shapes, tie_word_embeddings=False))
        with torch.no_grad():  # random biases so that qwen2's q/k/v biases matter
            for layer in model.model.layers:
                for projection in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    projection.bias.normal_(0.0, 0.5)
    else:
        model = MistralForCausalLM(MistralConfig(**shapes, tie_word_embeddings=False, sliding_window=None))
    model.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("family", ["qwen2", "mistral"])
def test_other_families_convert_with_parity(family: str, tmp_path: Path) -> None:
    model_dir = _tiny_family_model(family, tmp_path / family)
    result = convert_hf_to_gguf(model_dir, tmp_path / "model.gguf")
    assert result.architecture == ("qwen2" if family == "qwen2" else "llama")
    reader = gguf.GGUFReader(result.path)
    assert "output.weight" in {t.name for t in reader.tensors}  # untied head is kept
    hf = TransformersRunner(model_dir)
    llama = LlamaCppRunner(result.path, context_length=128, threads=1)
    ids = hf.tokenize(PROMPTS[0])
    assert np.abs(hf.logits(ids) - llama.logits(ids)).max() < 1e-2
    assert hf.greedy(ids, 5) == llama.greedy(ids, 5)
    llama.close()


@pytest.mark.parametrize(
    ("pre_tokenizer", "expected"),
    [
        ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}, "gpt-2"),
        (
            {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
            ]},
            "smollm",
        ),
        (
            {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?x"}},
                {"type": "ByteLevel", "use_regex": False},
            ]},
            "llama-bpe",
        ),
        (
            {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?x"}},
                {"type": "ByteLevel", "use_regex": False},
            ]},
            "qwen2",
        ),
        ({"type": "Whitespace"}, "default"),
    ],
)
def test_pre_tokenizer_names_are_ones_llama_cpp_knows(pre_tokenizer: dict[str, object], expected: str) -> None:
    assert pre_tokenizer_name(json.loads(json.dumps({"pre_tokenizer": pre_tokenizer}))) == expected
