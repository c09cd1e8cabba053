"""Every evaluation item the appliance ships or is configured with, as plain text for the contamination check.

The dataset stage drops training examples that overlap these, and the evaluation stage checks
the training set it is given against the same list; both read it here, so a benchmark added to
the evaluation is guarded in training the moment it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.evaluate import medquad, multiple_choice, pubmedqa
from appliance.evaluate.config import EvalConfig

# Whole abstracts: an abstract copied into a training set is contamination even where the
# evaluation prompt shows only its beginning.
_FULL_CONTEXT = 1_000_000


@dataclass(frozen=True)
class EvalText:
    benchmark: str
    question: str
    passages: tuple[str, ...]


def _choices(benchmark: str, items: list[multiple_choice.MultipleChoiceItem]) -> list[EvalText]:
    return [EvalText(benchmark, item.question, (item.question, *item.options.values())) for item in items]


def evaluation_texts(config: EvalConfig) -> list[EvalText]:
    """All items in full, whatever subset a quick run scores: a later full run must be clean too."""
    texts = [
        EvalText("medquad", item.question, (item.question, item.answer))
        for item in medquad.load_medquad(config.medquad_file or medquad.shipped_heldout(), None)
    ]
    for item in [*pubmedqa.load_test_split(None, _FULL_CONTEXT), *pubmedqa.load_demonstrations(None, _FULL_CONTEXT)]:
        texts.append(EvalText("pubmedqa", item.question, (item.question, item.context)))
    texts += _choices("mmlu_medical", multiple_choice.load_mmlu())
    for path in config.medqa_files:
        texts += _choices(f"mc_{path.stem}", multiple_choice.load_medqa(path))
    for path in config.medmcqa_files:
        texts += _choices(f"mc_{path.stem}", multiple_choice.load_medmcqa(path))
    return texts
