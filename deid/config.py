"""Typed settings of the de-identification engine (one section of the appliance settings)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field


class AnonymizationMode(str, Enum):
    surrogate = "surrogate"
    redact = "redact"


class DeidConfig(BaseModel):
    mode: AnonymizationMode = AnonymizationMode.surrogate
    score_threshold: float = Field(0.35, ge=0.0, le=1.0)
    workers: int = Field(1, ge=1)
    consistent_across_corpus: bool = False
    date_shift_max_days: int = Field(365, ge=1)
    jsonl_text_fields: list[str] = Field(default_factory=lambda: ["text"])
    # Detection: spaCy's news-trained NER adds little on clinical text and costs most of the time.
    use_spacy_ner: bool = False
    detect_batch_size: int = Field(32, ge=1)
