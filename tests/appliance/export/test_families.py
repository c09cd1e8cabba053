"""Every exportable family through our converter and the real llama.cpp, against transformers.

One tiny checkpoint per family (and per rope-scaling type), built here, converted once per
module. Each must predict the same next token as transformers at >= 98% of at least 48
positions, reaching past the original context of the rope-scaled ones, and tokenize as the
Hugging Face tokenizer does; a peft LoRA adapter of each family, served unmerged through
llama.cpp's ``lora_path``, must agree with transformers running the adapter.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest

from appliance.export.gguf_convert import convert_hf_to_gguf
from appliance.export.lora_gguf import convert_lora_to_gguf
from appliance.export.runners import LlamaCppRunner, TransformersRunner
from appliance.families.family_registry import lora_targets
from tests.appliance.export.lora_support import make_lora_adapter
from tests.appliance.families.checkpoints import KINDS, LONG_TEXT, build_checkpoint

# Prose, digits, punctuation, runs of spaces, newlines and non-ASCII text the corpus never held.
TOKENIZER_TEXTS = (
    LONG_TEXT,
    "Metformin 500 mg twice daily; HbA1c 7.2% on 2024-03-01.",
    "Plan:\n\n1. chest X-ray\n2. CBC  and  CRP",
    "Fièvre à 39 °C, naïve patient — 😀 ok",
    "x",
)
MIN_POSITIONS = 48
MIN_TOP1 = 0.98


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """kind -> (Hugging Face directory, F32 GGUF), built lazily so one parametrized case builds one model."""
    root = tmp_path_factory.mktemp("families")

    class Lazy(dict[str, tuple[Path, Path]]):
        def __missing__(self, kind: str) -> tuple[Path, Path]:
            directory = build_checkpoint(kind, root / kind)
            result = convert_hf_to_gguf(directory, root / f"{kind}.gguf", out_type="F32")
            self[kind] = (directory, result.path)
            return self[kind]

    return Lazy()


def _top1_agreement(reference: TransformersRunner, candidate: LlamaCppRunner, ids: list[int]) -> float:
    expected = reference.logits(ids).argmax(axis=-1)
    return float((expected == candidate.logits(ids).argmax(axis=-1)).mean())


@pytest.mark.parametrize("kind", list(KINDS))
def test_family_converts_with_logit_and_tokenizer_parity(kind: str, converted: dict[str, tuple[Path, Path]]) -> None:
    directory, path = converted[kind]
    hf = TransformersRunner(directory)
    llama = LlamaCppRunner(path, context_length=256, threads=2)
    try:
        for text in TOKENIZER_TEXTS:
            assert llama.tokenize(text) == hf.tokenize(text), text
            assert llama.tokenize(text, add_special=False) == hf.tokenize(text, add_special=False), text
        ids = hf.tokenize(LONG_TEXT)
        assert len(ids) >= MIN_POSITIONS
        assert _top1_agreement(hf, llama, ids) >= MIN_TOP1
    finally:
        llama.close()


@pytest.mark.parametrize("kind", ["llama3-rope", "llama-linear-rope", "qwen2-yarn-rope"])
def test_rope_scaling_holds_past_the_original_context(kind: str, converted: dict[str, tuple[Path, Path]]) -> None:
    """Positions 16..63 lie past the original context of 16: only correct scaling keeps top-1 there."""
    directory, path = converted[kind]
    hf = TransformersRunner(directory)
    llama = LlamaCppRunner(path, context_length=64, threads=2)
    try:
        ids = hf.tokenize(LONG_TEXT)[:64]
        expected, got = hf.logits(ids)[16:], llama.logits(ids)[16:]
        assert len(expected) >= MIN_POSITIONS
        assert float((expected.argmax(-1) == got.argmax(-1)).mean()) >= MIN_TOP1
        assert np.abs(expected - got).max() < 0.01 * max(1.0, float(np.abs(expected).max()))
    finally:
        llama.close()
    reader = gguf.GGUFReader(path)
    names = {tensor.name for tensor in reader.tensors}
    keys = set(reader.fields)
    arch = str(reader.fields["general.architecture"].contents())
    if kind == "llama3-rope":
        assert "rope_freqs.weight" in names and f"{arch}.rope.scaling.type" not in keys
    else:
        scaling = reader.fields[f"{arch}.rope.scaling.type"].contents()
        assert scaling == ("linear" if kind == "llama-linear-rope" else "yarn")


def _fields(path: Path) -> tuple[dict[str, object], dict[str, gguf.ReaderTensor]]:
    reader = gguf.GGUFReader(path)
    return {key: field.contents() for key, field in reader.fields.items()}, {t.name: t for t in reader.tensors}


def test_family_specific_metadata_and_tensors(converted: dict[str, tuple[Path, Path]]) -> None:
    fields, tensors = _fields(converted["gemma2"][1])
    assert fields["gemma2.attn_logit_softcapping"] == pytest.approx(50.0)
    assert fields["gemma2.final_logit_softcapping"] == pytest.approx(30.0)
    assert fields["gemma2.attention.sliding_window"] == 12
    assert "blk.0.post_ffw_norm.weight" in tensors and "output.weight" not in tensors
    fields, tensors = _fields(converted["gemma3"][1])
    assert fields["gemma3.attention.sliding_window_pattern"] == [True, True, False]
    assert fields["gemma3.rope.freq_base_swa"] == pytest.approx(10000.0)
    assert fields["gemma3.rope.scaling.factor"] == pytest.approx(8.0)
    assert "blk.0.attn_q_norm.weight" in tensors
    _fields_qwen3, tensors = _fields(converted["qwen3"][1])
    assert "blk.1.attn_k_norm.weight" in tensors and "output.weight" not in tensors
    _fields_phi3, tensors = _fields(converted["phi3"][1])
    assert tuple(tensors["blk.0.attn_qkv.weight"].shape) == (64, 64 + 2 * 32)
    assert tuple(tensors["blk.0.ffn_up.weight"].shape) == (64, 2 * 128)  # gate and up stay fused


@pytest.mark.parametrize("kind", ["spm-llama", "spm-mistral"])
def test_sentencepiece_vocabulary_keeps_scores_types_and_spaces(kind: str, converted: dict[str, tuple[Path, Path]]) -> None:
    import sentencepiece as spm

    directory, path = converted[kind]
    fields, _tensors = _fields(path)
    processor = spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))
    tokens, types, scores = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"], fields["tokenizer.ggml.scores"]
    assert fields["tokenizer.ggml.model"] == "llama" and fields["tokenizer.ggml.add_space_prefix"] is True
    assert fields["tokenizer.ggml.add_bos_token"] is True and fields["tokenizer.ggml.add_eos_token"] is False
    assert (fields["tokenizer.ggml.bos_token_id"], fields["tokenizer.ggml.eos_token_id"]) == (1, 2)
    assert types[0] == gguf.TokenType.UNKNOWN and types[1] == types[2] == gguf.TokenType.CONTROL
    byte_a = tokens.index("<0x41>")
    assert types[byte_a] == gguf.TokenType.BYTE and processor.is_byte(byte_a)
    plain = [i for i in range(len(tokens)) if not (processor.is_byte(i) or processor.is_control(i) or processor.is_unknown(i))]
    for index in (plain[0], plain[-1]):
        assert tokens[index] == processor.id_to_piece(index)
        assert scores[index] == pytest.approx(processor.get_score(index))
        assert types[index] == gguf.TokenType.NORMAL
    if kind == "spm-mistral":
        assert types[tokens.index("[INST]")] == types[tokens.index("[/INST]")] == gguf.TokenType.CONTROL


@pytest.mark.parametrize("kind", ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "spm-llama"])
def test_lora_adapter_served_unmerged_matches_transformers(
    kind: str, converted: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    from peft import PeftModel

    directory, base_gguf = converted[kind]
    config = json.loads((directory / "config.json").read_text())
    targets = lora_targets(config["model_type"])
    adapter = make_lora_adapter(directory, tmp_path / "adapter", scale=0.2, targets=targets)
    modules = convert_lora_to_gguf(adapter, directory, tmp_path / "adapter.gguf")
    assert modules == config["num_hidden_layers"] * len(targets)
    hf = TransformersRunner(directory)
    hf._model = PeftModel.from_pretrained(hf._model, str(adapter)).merge_and_unload()
    plain = LlamaCppRunner(base_gguf, context_length=128, threads=2)
    served = LlamaCppRunner(base_gguf, context_length=128, threads=2, lora_path=tmp_path / "adapter.gguf")
    try:
        ids = hf.tokenize(LONG_TEXT)[:MIN_POSITIONS]
        expected = hf.logits(ids)
        assert float((expected.argmax(-1) == served.logits(ids).argmax(-1)).mean()) >= MIN_TOP1
        assert np.abs(expected - served.logits(ids)).max() < np.abs(expected - plain.logits(ids)).max() / 4
    finally:
        plain.close()
        served.close()


def test_f16_conversion_streams_matrices_as_f16_and_keeps_parity(converted: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    directory, _f32 = converted["qwen3"]
    result = convert_hf_to_gguf(directory, tmp_path / "model-f16.gguf", out_type="F16")
    _fields_f16, tensors = _fields(result.path)
    kinds = {name: tensor.tensor_type for name, tensor in tensors.items()}
    assert kinds["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["blk.0.attn_q_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert not list(tmp_path.glob("*.partial"))
    hf = TransformersRunner(directory, matrix_dtype="float16")
    llama = LlamaCppRunner(result.path, context_length=256, threads=2)
    try:
        ids = hf.tokenize(LONG_TEXT)
        assert _top1_agreement(hf, llama, ids) >= MIN_TOP1
    finally:
        llama.close()


def test_export_stage_carries_gemma2_with_an_adapter_through_the_f16_gates(tmp_path: Path) -> None:
    """The whole stage on a family with soft-capping, (1 + w) norms and a folded query scale:
    merge, F16 reference, parity against transformers rounded alike, Q8_0, the adapter GGUF."""
    from appliance.export.stage import export_stage
    from tests.appliance.export.conftest import export_settings

    directory = build_checkpoint("gemma2", tmp_path / "gemma2")
    adapter = make_lora_adapter(directory, tmp_path / "adapter", targets=lora_targets("gemma2"))
    settings = export_settings(tmp_path / "home", quantizations=["Q8_0"], reference_type="F16")
    result = export_stage(settings, base_model=directory, adapter_dir=adapter, workdir=tmp_path / "work")
    parity = json.loads(result.path("parity.json").read_text())
    assert parity["parity"]["passed"] and parity["reference"]["file"] == "model-f16.gguf"
    assert [quant["type"] for quant in parity["quantizations"]] == ["Q8_0"]
    assert result.manifest.details["adapter_modules"] == 2 * len(lora_targets("gemma2"))
    _fields_f16, tensors = _fields(result.path("model-f16.gguf"))
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
