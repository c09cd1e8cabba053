"""The ``export`` stage: merge, convert to GGUF, quantize, and gate on parity and perplexity.

Stage directory layout::

    merged/               the merged model (safetensors + tokenizer)
    model-f32.gguf        the unquantized reference GGUF (``model-f16.gguf`` if configured)
    model-<QUANT>.gguf    one per accepted quantization
    adapter.gguf          the LoRA adapter alone, for llama.cpp's ``lora_path``
    parity.json           parity probes, perplexities and the verdict on every quant

The merge and the reference conversion are the slow steps; they are built in the stage's
resume directory with a marker each, so a killed export does not redo them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import ApplianceSettings
from appliance.export.config import ExportConfig
from appliance.export.gguf_convert import convert_hf_to_gguf, read_gguf_pre_tokenizer
from appliance.export.heldout import read_texts
from appliance.export.lora_gguf import convert_lora_to_gguf
from appliance.export.merge import merge_adapter
from appliance.export.parity import (
    BUILTIN_HELDOUT,
    check_parity,
    judge_quant,
    measure_perplexity,
    require_parity,
)
from appliance.export.quantize import quantize_gguf, tensor_types
from appliance.export.runners import LlamaCppRunner, TransformersRunner
from appliance.families.family_registry import check_exportable
from appliance.pipeline.stage import StageContext, StageResult, run_stage
from deid.errors import GateError, ModelError
from deid.fileio import atomic_write_text

STAGE_NAME = "export"
# The reference GGUF's matrices are rounded so; transformers is rounded alike for the parity check.
_MATRIX_DTYPES: dict[str, str | None] = {"F32": None, "F16": "float16", "BF16": "bfloat16"}
Progress = Callable[[str], None]


def reference_file_name(config: ExportConfig) -> str:
    return f"model-{config.reference_type.lower()}.gguf"


def _step(resume_dir: Path, name: str, build: Callable[[Path], Any]) -> Path:
    """Run ``build(target)`` once per fingerprint; a marker records that ``target`` is complete."""
    target = resume_dir / name
    marker = resume_dir / f".{name}.done"
    if not marker.exists():
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        build(target)
        marker.write_text("done\n")
    return target


def _check_adapter_loads(base_model: Path, adapter_gguf: Path, config: ExportConfig) -> None:
    """A GGUF base can serve the adapter unmerged: prove llama.cpp accepts it before shipping it."""
    import numpy as np

    runner = LlamaCppRunner(base_model, context_length=64, threads=config.threads, lora_path=adapter_gguf)
    try:
        if not np.isfinite(runner.logits(runner.tokenize("Blood pressure check."))).all():
            raise GateError("the GGUF adapter gives non-finite logits on the base model")
    finally:
        runner.close()


def _build(
    ctx: StageContext,
    config: ExportConfig,
    base_model: Path,
    adapter_dir: Path | None,
    heldout: list[str],
    heldout_source: str,
    say: Progress,
) -> dict[str, Any]:
    say("merging the adapter into the full-precision base" if adapter_dir else "loading the base model")
    merged = _step(ctx.resume_dir, "merged", lambda target: merge_adapter(base_model, adapter_dir, target))
    hint = read_gguf_pre_tokenizer(base_model) if base_model.is_file() else None
    reference_name = reference_file_name(config)
    say(f"converting to GGUF ({config.reference_type})")
    reference = _step(
        ctx.resume_dir,
        reference_name,
        lambda target: convert_hf_to_gguf(merged, target, out_type=config.reference_type, pre_tokenizer_hint=hint),
    )

    say("parity check against transformers")
    family = check_exportable(merged)
    hf = TransformersRunner(
        merged, context_length=config.context_length, matrix_dtype=_MATRIX_DTYPES[config.reference_type]
    )
    gguf_runner = LlamaCppRunner(reference, context_length=config.context_length, threads=config.threads)
    try:
        parity = check_parity(
            hf,
            gguf_runner,
            tolerance=config.parity_logit_tolerance * family.parity_tolerance_scale,
            greedy_tokens=config.parity_greedy_tokens,
        )
    finally:
        gguf_runner.close()
        hf.close()
    require_parity(parity)

    measure: dict[str, Any] = {"max_tokens": config.perplexity_max_tokens, "context_length": config.context_length, "threads": config.threads}
    say("held-out perplexity of the reference GGUF")
    reference_ppl = measure_perplexity(reference, heldout, **measure)
    quants: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for kind in config.quantizations:
        say(f"quantizing to {kind}")
        path = quantize_gguf(reference, ctx.output_dir / f"model-{kind}.gguf", kind, config.threads)
        verdict = judge_quant(kind, measure_perplexity(path, heldout, **measure), reference_ppl, config.max_perplexity_increase)
        entry = {
            "type": kind,
            "file": path.name,
            "perplexity": verdict.perplexity,
            "increase": verdict.increase,
            "tensor_types": tensor_types(path),
        }
        if verdict.accepted:
            quants.append(entry)
            continue
        path.unlink()
        refused.append(entry)
        message = (
            f"{kind} refused: held-out perplexity {verdict.perplexity:.3f} is {verdict.increase:+.1%} vs "
            f"{config.reference_type} (limit +{config.max_perplexity_increase:.0%})"
        )
        if config.refused_quant_policy == "fail":
            raise GateError(message)
        say(message)

    adapter_modules = 0
    if adapter_dir is not None and config.export_adapter:
        say("writing the LoRA adapter as GGUF")
        adapter_modules = convert_lora_to_gguf(adapter_dir, merged, ctx.output_dir / "adapter.gguf")
        if base_model.is_file():
            _check_adapter_loads(base_model, ctx.output_dir / "adapter.gguf", config)

    summary = {
        "reference": {"type": config.reference_type, "file": reference_name, "perplexity": round(reference_ppl, 4)},
        "parity": parity.as_dict(),
        "heldout": {"source": heldout_source, "documents": len(heldout), "max_tokens": config.perplexity_max_tokens},
        "max_perplexity_increase": config.max_perplexity_increase,
        "quantizations": quants,
        "refused": refused,
    }
    atomic_write_text(ctx.output_dir / "parity.json", json.dumps(summary, indent=2))
    shutil.move(str(reference), ctx.output_dir / reference_name)
    shutil.move(str(merged), ctx.output_dir / "merged")
    return {**summary, "adapter_modules": adapter_modules, "has_adapter": adapter_dir is not None}


def export_stage(
    settings: ApplianceSettings,
    *,
    base_model: Path,
    adapter_dir: Path | None,
    workdir: Path,
    heldout_texts: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> StageResult:
    """Merge ``adapter_dir`` into ``base_model`` and export GGUFs into ``<workdir>/export``."""
    config = settings.export
    if not base_model.exists():
        raise ModelError(f"base model not found: {base_model}")
    if adapter_dir is not None and not adapter_dir.is_dir():
        raise ModelError(f"adapter directory not found: {adapter_dir}")
    if base_model.is_dir():
        check_exportable(base_model)  # before the slow merge: an unsupported family is refused at once
    heldout = read_texts(heldout_texts) if heldout_texts else list(BUILTIN_HELDOUT)
    source = "given" if heldout_texts else "builtin"
    inputs = {"base_model": base_model}
    if adapter_dir is not None:
        inputs["adapter"] = adapter_dir
    if heldout_texts is not None:
        inputs["heldout"] = heldout_texts
    say = progress or (lambda _message: None)
    return run_stage(
        workdir,
        STAGE_NAME,
        settings=config,
        inputs=inputs,
        build=lambda ctx: _build(ctx, config, base_model, adapter_dir, heldout, source, say),
        force=force,
    )
