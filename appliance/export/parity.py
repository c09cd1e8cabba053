"""The export gates: the GGUF must compute what the merged model computes, and quants must stay close.

Parity is checked on fixed probe prompts against transformers: same tokens, logits within a
tolerance, same greedy continuation. The logit tolerance is relative to the largest logit
(at least 1): float32 kernels that sum in another order drift in proportion to the values,
so a model with logits near 30 differs more in absolute terms than one near 1. Quants are judged by held-out perplexity relative to the
unquantized reference GGUF, measured in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from appliance.export.runners import LlamaCppRunner, TransformersRunner, perplexity
from deid.errors import GateError

# Fixed, PHI-free probes: prose, digits, punctuation and a chat turn with special tokens.
PROBE_PROMPTS: tuple[str, ...] = (
    "The patient was admitted with chest pain and shortness of breath.",
    "Metformin 500 mg twice daily; HbA1c 7.2% on 2024-03-01. Plan:",
    "<|im_start|>user\nWhat are the symptoms of asthma?<|im_end|>\n<|im_start|>assistant\n",
)

# Used when no held-out de-identified text is given: written for this project, no PHI.
BUILTIN_HELDOUT: tuple[str, ...] = (
    "Assessment: the patient presents with a productive cough, fever of 38.4 C and crackles at the right "
    "base. Chest radiograph shows a right lower lobe consolidation consistent with community acquired "
    "pneumonia. Plan: start oral amoxicillin, encourage fluids, review in 48 hours or sooner if breathing "
    "worsens.",
    "Type 2 diabetes mellitus is managed with diet, exercise and metformin as first-line therapy. "
    "Glycated haemoglobin is checked every three months until stable. Patients are screened yearly for "
    "retinopathy, nephropathy and peripheral neuropathy.",
    "Hypertension is confirmed by repeated measurements above 140/90 mmHg. First-line drugs include "
    "ACE inhibitors, calcium channel blockers and thiazide diuretics, chosen by age and comorbidity.",
    "The wound was irrigated with saline, closed with four interrupted sutures and dressed. Tetanus "
    "status was up to date. Sutures are to be removed in ten days; return if redness or discharge appears.",
)


@dataclass
class ProbeResult:
    prompt_index: int
    tokens: int
    tokens_match: bool
    max_abs_logit_diff: float
    relative_logit_diff: float
    greedy_match: bool


@dataclass
class ParityReport:
    tolerance: float
    probes: list[ProbeResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(p.tokens_match and p.greedy_match and p.relative_logit_diff <= self.tolerance for p in self.probes)

    def as_dict(self) -> dict[str, object]:
        return {"tolerance": self.tolerance, "passed": self.passed, "probes": [asdict(p) for p in self.probes]}


def check_parity(
    reference: TransformersRunner,
    candidate: LlamaCppRunner,
    *,
    tolerance: float,
    greedy_tokens: int,
    prompts: Sequence[str] = PROBE_PROMPTS,
) -> ParityReport:
    report = ParityReport(tolerance=tolerance)
    for index, prompt in enumerate(prompts):
        ids = reference.tokenize(prompt)
        tokens_match = candidate.tokenize(prompt) == ids
        expected = reference.logits(ids)
        difference = float(np.abs(expected - candidate.logits(ids)).max())
        relative = difference / max(1.0, float(np.abs(expected).max()))
        greedy_match = reference.greedy(ids, greedy_tokens) == candidate.greedy(ids, greedy_tokens)
        report.probes.append(
            ProbeResult(index, len(ids), tokens_match, round(difference, 6), round(relative, 7), greedy_match)
        )
    return report


def require_parity(report: ParityReport) -> None:
    """Any parity failure stops the export: a GGUF that differs from the merged model must not be served."""
    for probe in report.probes:
        if not probe.tokens_match:
            raise GateError(f"parity: GGUF tokenizer differs from the model's on probe {probe.prompt_index}")
        if probe.relative_logit_diff > report.tolerance:
            raise GateError(
                f"parity: GGUF logits differ from transformers by {probe.max_abs_logit_diff:.4g} "
                f"({probe.relative_logit_diff:.2g} of the largest logit, limit {report.tolerance}) "
                f"on probe {probe.prompt_index}"
            )
        if not probe.greedy_match:
            raise GateError(f"parity: greedy decoding differs on probe {probe.prompt_index}")


@dataclass(frozen=True)
class QuantVerdict:
    name: str
    perplexity: float
    increase: float
    accepted: bool


def judge_quant(name: str, quant_perplexity: float, reference_perplexity: float, margin: float) -> QuantVerdict:
    increase = quant_perplexity / reference_perplexity - 1.0
    return QuantVerdict(name, round(quant_perplexity, 4), round(increase, 5), accepted=increase <= margin)


def measure_perplexity(path: Path, texts: Sequence[str], *, max_tokens: int, context_length: int, threads: int | None) -> float:
    runner = LlamaCppRunner(path, context_length=context_length, threads=threads)
    try:
        return perplexity(runner, texts, max_tokens)
    finally:
        runner.close()
