"""Adapter merging on the tiny llama: linear with weights (1, 0) is the first adapter; ties writes a loadable adapter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from appliance.train.base_model import load_base_model
from appliance.train.merge import MergeMethod, merge_adapters
from deid.errors import InputError


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory: pytest.TempPathFactory, tiny_hf_model: Path) -> list[Path]:
    from peft import LoraConfig, get_peft_model

    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = get_peft_model(load_base_model(tiny_hf_model).model,
                               LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.data.normal_(std=0.5)
        folder = tmp_path_factory.mktemp(f"adapter{seed}")
        model.save_pretrained(str(folder))
        folders.append(folder)
    return folders


def _logits(base: Path, adapter: Path) -> torch.Tensor:
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base_model(base).model, str(adapter))
    with torch.no_grad():
        return model(torch.tensor([[5, 6, 7, 8, 9]])).logits


def test_linear_merge_with_all_weight_on_one_is_that_adapter(tmp_path: Path, tiny_hf_model: Path,
                                                             two_adapters: list[Path]) -> None:
    out = tmp_path / "merged"
    merge_adapters(tiny_hf_model, two_adapters, method=MergeMethod.linear, weights=[1.0, 0.0], out=out)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "merged").exists()
    assert torch.allclose(_logits(tiny_hf_model, out), _logits(tiny_hf_model, two_adapters[0]), atol=1e-5)
    assert not torch.allclose(_logits(tiny_hf_model, out), _logits(tiny_hf_model, two_adapters[1]), atol=1e-3)
    with pytest.raises(InputError, match="already exists"):
        merge_adapters(tiny_hf_model, two_adapters, method=MergeMethod.linear, weights=[0.5, 0.5], out=out)
    with pytest.raises(InputError, match="one weight per adapter"):
        merge_adapters(tiny_hf_model, two_adapters, method=MergeMethod.linear, weights=[1.0], out=tmp_path / "x")


def test_cli_ties_merge_writes_an_adapter_between_the_two(tmp_path: Path, tiny_hf_model: Path,
                                                          two_adapters: list[Path]) -> None:
    out = tmp_path / "ties"
    env = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    env.pop("APPLIANCE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "adapters", "merge", *map(str, two_adapters), "--method", "ties",
         "--weights", "0.5,0.5", "--out", str(out), "--base-model", str(tiny_hf_model)],
        capture_output=True, text=True, env=env, timeout=170, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    merged = _logits(tiny_hf_model, out)
    base = load_base_model(tiny_hf_model).model(torch.tensor([[5, 6, 7, 8, 9]])).logits.detach()
    assert not torch.allclose(merged, base, atol=1e-4)
    for adapter in two_adapters:
        assert not torch.allclose(merged, _logits(tiny_hf_model, adapter), atol=1e-4)
