"""Evaluation fixtures: the tiny model as HF dir, F32 GGUF and Q8_0, and a copy that memorized a canary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CANARY = "Patient Zorbulon Quixfeather MRN 884-221-907 lives at 17 Vantablack Lane"


@pytest.fixture(scope="session")
def tiny_ggufs(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from appliance.export.gguf_convert import convert_hf_to_gguf
    from appliance.export.quantize import quantize_gguf

    root = tmp_path_factory.mktemp("eval-models")
    reference = convert_hf_to_gguf(tiny_hf_model, root / "model-f32.gguf").path
    return {"f32": reference, "q8": quantize_gguf(reference, root / "model-Q8_0.gguf", "Q8_0", 1)}


@pytest.fixture(scope="session")
def leaky_model(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained until it recites the canary: what a privacy failure looks like."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from appliance.export.gguf_convert import convert_hf_to_gguf

    root = tmp_path_factory.mktemp("leaky")
    directory = root / "hf"
    shutil.copytree(tiny_hf_model, directory)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.tensor([tokenizer(CANARY)["input_ids"]])
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
    return convert_hf_to_gguf(directory, root / "leaky-f32.gguf").path
