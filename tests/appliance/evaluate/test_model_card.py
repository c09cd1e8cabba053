"""The model card describes every training stage of a recipe, not only instruction tuning."""

from __future__ import annotations

from pathlib import Path

from appliance.evaluate.model_card import lineage, training_summary
from appliance.pipeline.stage import StageContext, run_stage


def _plant(workdir: Path, name: str, steps: int) -> str:
    """A finished stage as the trainer records it: an adapter file and counts in the details."""

    def build(ctx: StageContext) -> dict[str, object]:
        (ctx.output_dir / "adapter").mkdir()
        (ctx.output_dir / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
        return {"steps": steps, "tokens": steps * 100}

    return run_stage(workdir, name, settings={"stage": name}, inputs={}, build=build).manifest.fingerprint


def test_card_lists_each_training_stage_of_a_recipe_in_order(tmp_path: Path) -> None:
    fingerprints = {name: _plant(tmp_path, name, steps) for name, steps in
                    (("train-dpo", 3), ("train-cpt", 7), ("train", 5))}
    lines = lineage(tmp_path, {})
    listed = [line for line in lines if line.startswith("- training stage")]
    assert listed == [f"- training stage `{name}`: fingerprint `{fingerprints[name]}`"
                      for name in ("train-cpt", "train", "train-dpo")]
    summary = training_summary(tmp_path)
    assert {"| train-cpt | steps | 7 |", "| train | steps | 5 |", "| train-dpo | steps | 3 |"} <= set(summary)


def test_a_stage_whose_adapter_is_gone_is_not_described(tmp_path: Path) -> None:
    _plant(tmp_path, "train-cpt", 7)
    _plant(tmp_path, "train", 5)
    (tmp_path / "train-cpt" / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 3)
    assert [line for line in training_summary(tmp_path) if "steps" in line] == ["| train | steps | 5 |"]
