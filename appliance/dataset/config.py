"""Typed settings of ``appliance dataset build``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RecipeMix(BaseModel):
    """Relative weights of each recipe in the built set; 0 turns a recipe off.

    Weights are shares of the final training set; a recipe with fewer examples than its
    share simply contributes all it has (we never repeat examples to fill a share).
    """

    pretrain: float = Field(1.0, ge=0.0, description="notes as continued-pretraining text")
    record_instructions: float = Field(1.0, ge=0.0, description="templated instruction pairs from records")
    qa: float = Field(1.0, ge=0.0, description="question/answer and dialogue files")
    replay: float = Field(0.1, ge=0.0, description="general-domain replay, as a share of everything else")


class DatasetConfig(BaseModel):
    context_length: int = Field(256, ge=32, description="tokens; notes are chunked to fit it")
    chars_per_token: float = Field(2.5, gt=0.5, description="conservative estimate used before tokenizing")
    min_chars: int = Field(20, ge=1, description="shorter examples are dropped")
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    max_residual_phi_per_1k_tokens: float = Field(0.5, ge=0.0)
    phi_gate: bool = Field(True, description="re-scan the built set with the de-identification detector")
    phi_gate_recipes: list[str] = Field(
        default_factory=lambda: ["pretrain", "record_instructions"],
        description="recipes re-scanned: those made from patient records; public Q&A and replay hold no patients",
    )
    recipes: RecipeMix = Field(default_factory=RecipeMix)
    max_qa_examples: int | None = Field(None, ge=1, description="cap on Q&A pairs taken (after shuffling)")
    near_duplicate_threshold: float = Field(0.8, gt=0.0, le=1.0, description="estimated Jaccard similarity")
    shingle_words: int = Field(5, ge=1)
    minhash_permutations: int = Field(64, ge=8)
    seed: int = 0
