"""Typed settings of the de-identification engine (one section of the appliance settings)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from deid.field_policy import parse_policy


class AnonymizationMode(StrEnum):
    surrogate = "surrogate"
    redact = "redact"


class FileNaming(StrEnum):
    """How ``deid run`` names its outputs (see :mod:`deid.file_names`)."""

    keep_safe = "keep_safe"  # a keyed pseudonym for each path component that may carry PHI
    pseudonymize = "pseudonymize"  # a keyed pseudonym for every path component


class DeidConfig(BaseModel):
    mode: AnonymizationMode = AnonymizationMode.surrogate
    score_threshold: float = Field(0.35, ge=0.0, le=1.0)
    workers: int = Field(1, ge=1)
    consistent_across_corpus: bool = False
    date_shift_max_days: int = Field(365, ge=1)
    jsonl_text_fields: list[str] = Field(default_factory=lambda: ["text"])
    # Detection: spaCy's news-trained NER adds little on clinical text and costs most of the time.
    use_spacy_ner: bool = False
    # Detection: a learned per-word filter over the rules (deid/detection/token_filter.py), fit on real nursing
    # notes (bench/deid_cv.py); off = rules alone.
    token_filter: bool = True
    detect_batch_size: int = Field(32, ge=1)
    site_terms_file: Path | None = Field(
        None, description="TOML file of this hospital's own facility, ward, acronym and staff names, by entity type"
    )
    field_policies: dict[str, str] = Field(
        default_factory=dict,
        description="CSV column / JSONL field path (a.b.c) -> drop | pseudonymize[:ENTITY] | shift | keep | scan",
    )
    default_field_policy: str = Field(
        "scan", description="policy for fields not listed; under scan, names like ssn or dob imply one (deid.field_policy)"
    )
    file_naming: FileNaming = Field(
        FileNaming.keep_safe, description="output file names: keyed pseudonyms where a name may carry PHI, or always"
    )
    patient_id_fields: list[str] = Field(
        default_factory=lambda: ["patient_id"],
        description="CSV column / JSONL field naming the patient: scopes surrogates and the date shift",
    )

    @field_validator("field_policies")
    @classmethod
    def _known_policies(cls, value: dict[str, str]) -> dict[str, str]:
        for policy in value.values():
            parse_policy(policy)
        return value

    @field_validator("default_field_policy")
    @classmethod
    def _known_default(cls, value: str) -> str:
        parse_policy(value)
        return value
