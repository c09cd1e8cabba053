from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.demo import demo_settings, medquad_sample, sample_canaries, samples_dir


def test_demo_settings_are_quick_but_never_override_the_operator(
    appliance_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = demo_settings(load_settings())
    assert quick.train.max_steps == 8 and quick.eval.few_shot == 0 and quick.eval.pubmedqa_limit == 100

    monkeypatch.setenv("APPLIANCE_TRAIN__MAX_STEPS", "40")
    monkeypatch.setenv("APPLIANCE_EVAL__FEW_SHOT", "3")
    chosen = demo_settings(load_settings())
    assert chosen.train.max_steps == 40 and chosen.eval.few_shot == 3
    assert chosen.eval.pubmedqa_limit == 100 and chosen.eval.mmlu_limit == 102


def test_shipped_samples_and_canaries() -> None:
    canaries = sample_canaries(samples_dir())
    assert len(canaries) == 3 and all(" " in name for name in canaries)
    assert medquad_sample().is_file()
    notes = (samples_dir() / "fhir" / "DocumentReference.000.ndjson").read_text()
    assert notes.strip(), "the sample FHIR slice carries clinical notes"


def test_demo_knowledge_is_indexed_once(appliance_home: Path) -> None:
    from appliance.demo import index_sample_knowledge

    lines: list[str] = []
    index_sample_knowledge(load_settings(), lines.append)
    index_sample_knowledge(load_settings(), lines.append)
    added, again = [line for line in lines if line.startswith("knowledge base:")]
    # The shipped MedQuAD sample: 298 pairs since the two held-out evaluation items were taken out.
    assert added.startswith("knowledge base: 298 added") and "0 unchanged" in added
    assert again.startswith("knowledge base: 0 added, 298 unchanged")
