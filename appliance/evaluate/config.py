"""Typed settings of ``appliance eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from deid.errors import ConfigError


class EvalConfig(BaseModel):
    pubmedqa_limit: int | None = Field(200, ge=1, description="questions used; None = all 500")
    few_shot: int = Field(2, ge=0, le=6, description="demonstrations in the few-shot run; 0 = zero-shot only")
    pubmedqa_context_chars: int = Field(800, ge=100, description="abstract text kept per question")
    mmlu_limit: int | None = Field(
        300, ge=0, description="MMLU medical test questions, stratified by subject; None = all, 0 = skip"
    )
    medqa_files: list[Path] = Field(default_factory=list, description="multiple-choice files in the MedQA JSONL layout")
    medmcqa_files: list[Path] = Field(default_factory=list, description="multiple-choice files in the MedMCQA layout")
    medqa_limit: int | None = Field(300, ge=1, description="questions per MedQA/MedMCQA file; None = all")
    medquad_file: Path | None = Field(
        None, description="held-out MedQuAD-layout JSONL(.gz); None = the shipped NIDDK slice"
    )
    medquad_limit: int | None = Field(None, ge=0, description="held-out answers scored; None = all, 0 = skip")
    review_limit: int = Field(
        10, ge=0, description="MedQuAD held-out questions answered through the consultation prompt and graded; 0 = skip"
    )
    review_max_tokens: int = Field(128, ge=8, description="greedy tokens per reviewed answer")
    judge_model: Path | None = Field(
        None, description="GGUF that grades reviewed answers on the rubric; None = the served model (a weak judge)"
    )
    answer_max_tokens: int = Field(48, ge=1, description="greedy tokens generated per answer for ROUGE-L")
    perplexity_max_tokens: int = Field(1024, ge=16)
    canary_prefix_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share of a canary shown as prompt")
    context_length: int = Field(2048, ge=128)
    threads: int | None = Field(None, ge=1, description="llama.cpp threads; None = all cores")

    def full(self) -> EvalConfig:
        """Every question of every benchmark: the setting a decision about a model should rest on."""
        return self.updated(pubmedqa_limit=None, mmlu_limit=None, medqa_limit=None, medquad_limit=None)

    def updated(self, **changes: Any) -> EvalConfig:
        """A validated copy with command-line overrides; a bad value is a ConfigError naming the field."""
        try:
            return EvalConfig.model_validate({**self.model_dump(), **changes})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
            raise ConfigError(f"invalid eval option: {problems}") from None
