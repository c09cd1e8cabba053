from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.demo import demo_settings, medquad_sample, sample_canaries, samples_dir


def test_demo_settings_are_quick_but_never_override_the_operator(
    appliance_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = demo_settings(load_settings())
    assert quick.train.max_steps == 8 and quick.eval.few_shot == 0 and quick.eval.pubmedqa_limit == 20

    monkeypatch.setenv("APPLIANCE_TRAIN__MAX_STEPS", "40")
    monkeypatch.setenv("APPLIANCE_EVAL__FEW_SHOT", "3")
    chosen = demo_settings(load_settings())
    assert chosen.train.max_steps == 40 and chosen.eval.few_shot == 3
    assert chosen.eval.pubmedqa_limit == 20


def test_shipped_samples_and_canaries() -> None:
    canaries = sample_canaries(samples_dir())
    assert len(canaries) == 3 and all(" " in name for name in canaries)
    assert medquad_sample().is_file()
    notes = (samples_dir() / "fhir" / "DocumentReference.000.ndjson").read_text()
    assert notes.strip(), "the sample FHIR slice carries clinical notes"
