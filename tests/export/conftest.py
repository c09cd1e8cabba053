"""Export fixtures: a real peft adapter on the tiny model and one export run shared by the module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ApplianceSettings, load_settings
from appliance.pipeline.stage import StageResult
from tests.export.lora_support import make_lora_adapter


@pytest.fixture(scope="session")
def lora_adapter(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lora_adapter(tiny_hf_model, tmp_path_factory.mktemp("lora") / "adapter")


def export_settings(home: Path, **export: object) -> ApplianceSettings:
    return load_settings(home=home, export={"quantizations": ["Q8_0", "Q4_K_M"], "threads": 2, **export})


@pytest.fixture(scope="session")
def exported(tiny_hf_model: Path, lora_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> StageResult:
    from appliance.export.stage import export_stage

    root = tmp_path_factory.mktemp("export")
    return export_stage(
        export_settings(root / "home"), base_model=tiny_hf_model, adapter_dir=lora_adapter, workdir=root / "work"
    )


@pytest.fixture(scope="session")
def fitted_model(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny model fitted to one held-out text (and that text): near-certain, so coarse quants hurt it."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from appliance.export.parity import BUILTIN_HELDOUT

    root = tmp_path_factory.mktemp("fitted")
    directory = root / "model"
    shutil.copytree(tiny_hf_model, directory)
    text = BUILTIN_HELDOUT[3]
    (root / "heldout.txt").write_text(text)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only fight over the shared cores
    try:
        for _ in range(60):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(directory)
    return directory, root / "heldout.txt"
