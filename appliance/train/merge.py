"""Merge LoRA adapters into one adapter (peft's weighted merge): a defence against forgetting.

An adapter tuned on new clinical data can be blended with an earlier one (say the general
instruction adapter) instead of replacing it. ``linear`` adds the adapters' low-rank factors
with the given weights; ``ties`` keeps, per weight, only the largest changes whose sign the
adapters agree on (TIES-merging), which loses less of each when they pull apart. The result
is an ordinary adapter folder (config, weights, tokenizer), so export and serve take it
like any trained one. It is written to a staging folder and renamed into place.
"""

from __future__ import annotations

import json
import shutil
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

from appliance.train.base_model import load_base_model
from deid.errors import InputError, ModelError

ADAPTER_CONFIG = "adapter_config.json"
MERGED = "merged"


class MergeMethod(StrEnum):
    linear = "linear"
    ties = "ties"


def _check_adapter(folder: Path) -> dict[str, Any]:
    config = folder / ADAPTER_CONFIG
    if not config.is_file():
        raise InputError(f"not a LoRA adapter folder (no {ADAPTER_CONFIG}): {folder}")
    try:
        return dict(json.loads(config.read_text()))
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"corrupt {ADAPTER_CONFIG} in {folder}") from None


def merge_adapters(base_model: Path, adapters: list[Path], *, method: MergeMethod, weights: list[float],
                   out: Path, density: float = 0.5) -> dict[str, Any]:
    """Write the weighted merge of ``adapters`` (all trained on ``base_model``) to ``out``; returns a summary."""
    from peft import PeftModel

    if len(adapters) < 2:
        raise InputError("merging needs at least two adapters")
    if len(weights) != len(adapters):
        raise InputError(f"{len(adapters)} adapters but {len(weights)} weights; give one weight per adapter")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise InputError("merge weights must be non-negative and not all zero")
    if not 0 < density <= 1:
        raise InputError("ties density must be in (0, 1]")
    if out.exists():
        raise InputError(f"the output folder already exists: {out}")
    configs = [_check_adapter(a) for a in adapters]
    ranks = {c.get("r") for c in configs}
    targets = {tuple(sorted(c.get("target_modules") or [])) for c in configs}
    if len(ranks) != 1 or len(targets) != 1:
        raise InputError(f"{method.value} merging needs adapters of one rank and one set of target modules "
                         f"(ranks {sorted(r for r in ranks if r is not None)})")
    loaded = load_base_model(base_model)
    names = [f"a{index}" for index in range(len(adapters))]
    try:
        model = PeftModel.from_pretrained(loaded.model, str(adapters[0]), adapter_name=names[0])
        for name, folder in zip(names[1:], adapters[1:], strict=True):
            model.load_adapter(str(folder), adapter_name=name)
    except (ValueError, OSError, KeyError, RuntimeError) as error:
        raise ModelError(f"cannot load the adapters onto {base_model.name}: {type(error).__name__}") from None
    options: dict[str, Any] = {"density": density} if method is MergeMethod.ties else {}
    model.add_weighted_adapter(names, weights, adapter_name=MERGED, combination_type=method.value, **options)
    model.set_adapter(MERGED)
    for name in names:
        model.delete_adapter(name)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(str(staging), selected_adapters=[MERGED])
        nested = staging / MERGED  # peft keeps a non-default adapter in a sub-folder of its name
        if nested.is_dir():
            for item in nested.iterdir():
                item.replace(staging / item.name)
            nested.rmdir()
        loaded.tokenizer.save_pretrained(str(staging))
        summary = {"method": method.value, "weights": weights, "density": density if options else None,
                   "adapters": [str(a) for a in adapters], "base_model": base_model.name, "rank": ranks.pop()}
        (staging / "merge.json").write_text(json.dumps(summary, indent=2))
        staging.replace(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
