"""The export stage end to end on the tiny model: adapter GGUF, gates, refusal, skipping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from appliance.export.gguf_convert import convert_hf_to_gguf
from appliance.export.parity import check_parity, require_parity
from appliance.export.runners import LlamaCppRunner, TransformersRunner
from appliance.export.stage import export_stage
from appliance.pipeline.stage import StageResult
from deid.errors import GateError
from tests.appliance.export.conftest import export_settings

PROMPT = "The patient was admitted with chest pain and shortness of breath."


@pytest.fixture(scope="module")
def base_gguf(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_hf_to_gguf(tiny_hf_model, tmp_path_factory.mktemp("base") / "base-f32.gguf").path


def test_stage_outputs_and_manifest(exported: StageResult) -> None:
    names = {artifact.path for artifact in exported.manifest.artifacts}
    assert {"model-f32.gguf", "model-Q8_0.gguf", "model-Q4_K_M.gguf", "adapter.gguf", "parity.json"} <= names
    assert "merged/model.safetensors" in names
    parity = json.loads(exported.path("parity.json").read_text())
    assert parity["parity"]["passed"] is True
    assert [q["type"] for q in parity["quantizations"]] == ["Q8_0", "Q4_K_M"]
    assert all(abs(q["increase"]) < 0.1 for q in parity["quantizations"])
    assert exported.manifest.details["adapter_modules"] == 10


def test_adapter_gguf_on_base_matches_merged_model(exported: StageResult, base_gguf: Path) -> None:
    reader = gguf.GGUFReader(exported.path("adapter.gguf"))
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == pytest.approx(8.0)
    assert "blk.0.attn_q.weight.lora_b" in {t.name for t in reader.tensors}

    plain = LlamaCppRunner(base_gguf, context_length=128, threads=1)
    ids = plain.tokenize(PROMPT)
    base_logits = plain.logits(ids)
    plain.close()
    adapted = LlamaCppRunner(base_gguf, context_length=128, threads=1, lora_path=exported.path("adapter.gguf"))
    adapted_logits = adapted.logits(ids)
    adapted.close()
    merged = LlamaCppRunner(exported.path("model-f32.gguf"), context_length=128, threads=1)
    merged_logits = merged.logits(ids)
    merged.close()
    change = np.abs(merged_logits - base_logits).max()
    assert change > 0.05  # the adapter matters...
    assert np.abs(adapted_logits - merged_logits).max() < change / 20  # ...and llama.cpp applies it as merged


def test_second_run_is_skipped(exported: StageResult, tiny_hf_model: Path, lora_adapter: Path) -> None:
    home = exported.directory.parent.parent / "home"
    again = export_stage(
        export_settings(home), base_model=tiny_hf_model, adapter_dir=lora_adapter, workdir=exported.directory.parent
    )
    assert again.skipped


def test_nan_adapter_is_refused_and_nothing_written(tiny_hf_model: Path, lora_adapter: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-adapter"
    shutil.copytree(lora_adapter, broken)
    weights = load_file(broken / "adapter_model.safetensors")
    first_b = next(name for name in sorted(weights) if "lora_B" in name)
    weights[first_b][0, 0] = float("nan")
    save_file(weights, broken / "adapter_model.safetensors")
    with pytest.raises(GateError, match="NaN or inf"):
        export_stage(export_settings(tmp_path / "home"), base_model=tiny_hf_model, adapter_dir=broken, workdir=tmp_path / "w")
    assert not (tmp_path / "w" / "export").exists()


def test_worse_quant_is_refused_or_dropped(fitted_model: tuple[Path, Path], tmp_path: Path) -> None:
    model, heldout = fitted_model
    strict = {"quantizations": ["Q2_K"], "max_perplexity_increase": 0.0}
    with pytest.raises(GateError, match="Q2_K refused"):
        export_stage(
            export_settings(tmp_path / "h", refused_quant_policy="fail", **strict),
            base_model=model, adapter_dir=None, workdir=tmp_path / "fail", heldout_texts=heldout,
        )
    assert not (tmp_path / "fail" / "export").exists()
    messages: list[str] = []
    result = export_stage(
        export_settings(tmp_path / "h", **strict),
        base_model=model,
        adapter_dir=None,
        workdir=tmp_path / "drop",
        heldout_texts=heldout,
        progress=messages.append,
    )
    parity = json.loads(result.path("parity.json").read_text())
    assert parity["quantizations"] == [] and parity["refused"][0]["type"] == "Q2_K"
    assert parity["refused"][0]["increase"] > 0
    assert not result.path("model-Q2_K.gguf").exists()
    assert any("Q2_K refused" in message for message in messages)


def test_parity_gate_catches_a_gguf_of_another_model(exported: StageResult, base_gguf: Path) -> None:
    merged = TransformersRunner(exported.path("merged"))
    other = LlamaCppRunner(base_gguf, context_length=128, threads=1)  # the base, not the merged model
    report = check_parity(merged, other, tolerance=1e-2, greedy_tokens=4)
    other.close()
    assert not report.passed
    with pytest.raises(GateError, match="parity"):
        require_parity(report)
