"""Export fixtures: a real peft adapter on the tiny model and one export run shared by the module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ApplianceSettings, load_settings
from appliance.pipeline.stage import StageResult
from tests.appliance.export.lora_support import make_lora_adapter


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
    from appliance.export.parity import BUILTIN_HELDOUT
    from tests.support.tiny_model import fit_to_text

    root = tmp_path_factory.mktemp("fitted")
    text = BUILTIN_HELDOUT[3]
    (root / "heldout.txt").write_text(text)
    directory = fit_to_text(tiny_hf_model, root / "model", text)
    return directory, root / "heldout.txt"
