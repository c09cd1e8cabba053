"""Token and span recall and precision of predicted PHI spans against gold spans, with 95% intervals.

De-identification only has to remove PHI, not name its type, so a gold token counts as found
when any predicted span overlaps it, whatever type either side gives it; recall is broken down
by gold label and precision by predicted type. Tokens are runs of letters or digits (any
script), the unit the PhysioNet gold is annotated in. Span figures are stricter: a gold span is
found only when every token in it is covered, and a predicted span is right when it overlaps
any gold span. Everything is counted in one pass over sorted offsets: linear in the input.

``score`` is the one entry point for the CLI and for benchmarks (``bench.deid_cv``).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deid.evaluation.intervals import Rate

TOKEN = re.compile(r"[^\W_]+")


class PredictedSpan(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...

    @property
    def entity_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class GoldSpan:
    start: int
    end: int
    label: str


@dataclass
class Evaluation:
    """Counts over every scored document; ``Rate`` gives each figure with its interval."""

    documents: int = 0
    tokens: int = 0
    gold_spans: int = 0
    predicted_spans: int = 0
    gold_tokens: Counter[str] = field(default_factory=Counter)
    gold_tokens_found: Counter[str] = field(default_factory=Counter)
    predicted_tokens: Counter[str] = field(default_factory=Counter)
    predicted_tokens_right: Counter[str] = field(default_factory=Counter)
    gold_spans_scored: Counter[str] = field(default_factory=Counter)
    gold_spans_found: Counter[str] = field(default_factory=Counter)
    predicted_spans_by_type: Counter[str] = field(default_factory=Counter)
    predicted_spans_right: Counter[str] = field(default_factory=Counter)

    @property
    def token_recall(self) -> Rate:
        return Rate(sum(self.gold_tokens_found.values()), sum(self.gold_tokens.values()))

    @property
    def token_precision(self) -> Rate:
        return Rate(sum(self.predicted_tokens_right.values()), sum(self.predicted_tokens.values()))

    @property
    def span_recall(self) -> Rate:
        return Rate(sum(self.gold_spans_found.values()), sum(self.gold_spans_scored.values()))

    @property
    def span_precision(self) -> Rate:
        return Rate(sum(self.predicted_spans_right.values()), sum(self.predicted_spans_by_type.values()))

    @property
    def phi_token_share(self) -> Rate:
        """Gold PHI tokens among all tokens: on annotated de-identified output, the residual PHI rate."""
        return Rate(sum(self.gold_tokens.values()), self.tokens)

    def by_label(self) -> dict[str, dict[str, Rate]]:
        labels = sorted(set(self.gold_tokens) | set(self.gold_spans_scored))
        return {
            label: {
                "token_recall": Rate(self.gold_tokens_found[label], self.gold_tokens[label]),
                "span_recall": Rate(self.gold_spans_found[label], self.gold_spans_scored[label]),
            }
            for label in labels
        }

    def by_type(self) -> dict[str, dict[str, Rate]]:
        types = sorted(set(self.predicted_tokens) | set(self.predicted_spans_by_type))
        return {
            entity: {
                "token_precision": Rate(self.predicted_tokens_right[entity], self.predicted_tokens[entity]),
                "span_precision": Rate(self.predicted_spans_right[entity], self.predicted_spans_by_type[entity]),
            }
            for entity in types
        }

    def as_dict(self) -> dict[str, object]:
        """Counts and rates only: what reports, ``--json`` and the ledger carry."""
        return {
            "documents": self.documents,
            "tokens": self.tokens,
            "gold_spans": self.gold_spans,
            "predicted_spans": self.predicted_spans,
            "token_recall": self.token_recall.as_dict(),
            "token_precision": self.token_precision.as_dict(),
            "span_recall": self.span_recall.as_dict(),
            "span_precision": self.span_precision.as_dict(),
            "phi_token_share": self.phi_token_share.as_dict(),
            "by_label": {label: {k: r.as_dict() for k, r in rates.items()} for label, rates in self.by_label().items()},
            "by_type": {entity: {k: r.as_dict() for k, r in rates.items()} for entity, rates in self.by_type().items()},
        }


def _disjoint(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans united; each union keeps the name of the span that starts it."""
    merged: list[tuple[int, int, str]] = []
    for start, end, name in sorted(spans, key=lambda span: (span[0], -span[1])):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end), merged[-1][2])
        else:
            merged.append((start, end, name))
    return merged


def _names_of_tokens(tokens: list[tuple[int, int]], spans: list[tuple[int, int, str]]) -> list[str | None]:
    """For each token (in order), the name of the first disjoint span overlapping it, if any."""
    names: list[str | None] = []
    index = 0
    for start, end in tokens:
        while index < len(spans) and spans[index][1] <= start:
            index += 1
        names.append(spans[index][2] if index < len(spans) and spans[index][0] < end else None)
    return names


def add_document(evaluation: Evaluation, text: str, gold: Sequence[GoldSpan], predicted: Sequence[PredictedSpan]) -> None:
    """Count one document's tokens and spans into ``evaluation``."""
    tokens = [match.span() for match in TOKEN.finditer(text)]
    gold_disjoint = _disjoint((span.start, span.end, span.label) for span in gold)
    predicted_disjoint = _disjoint((span.start, span.end, span.entity_type) for span in predicted)
    gold_names = _names_of_tokens(tokens, gold_disjoint)
    predicted_names = _names_of_tokens(tokens, predicted_disjoint)
    evaluation.documents += 1
    evaluation.tokens += len(tokens)
    evaluation.gold_spans += len(gold)
    evaluation.predicted_spans += len(predicted)
    covered_prefix = [0]
    for gold_name, predicted_name in zip(gold_names, predicted_names, strict=True):
        if gold_name is not None:
            evaluation.gold_tokens[gold_name] += 1
            if predicted_name is not None:
                evaluation.gold_tokens_found[gold_name] += 1
        if predicted_name is not None:
            evaluation.predicted_tokens[predicted_name] += 1
            if gold_name is not None:
                evaluation.predicted_tokens_right[predicted_name] += 1
        covered_prefix.append(covered_prefix[-1] + (predicted_name is not None))
    token_ends = [end for _, end in tokens]
    token_starts = [start for start, _ in tokens]
    for span in gold:
        first = bisect.bisect_right(token_ends, span.start)
        last = bisect.bisect_left(token_starts, span.end)
        if last <= first:
            continue  # only punctuation or blanks: no token to find
        evaluation.gold_spans_scored[span.label] += 1
        if covered_prefix[last] - covered_prefix[first] == last - first:
            evaluation.gold_spans_found[span.label] += 1
    gold_ends = [end for _, end, _ in gold_disjoint]
    for found in predicted:
        evaluation.predicted_spans_by_type[found.entity_type] += 1
        index = bisect.bisect_right(gold_ends, found.start)
        if index < len(gold_disjoint) and gold_disjoint[index][0] < found.end:
            evaluation.predicted_spans_right[found.entity_type] += 1


def score(documents: Iterable[tuple[str, Sequence[GoldSpan], Sequence[PredictedSpan]]]) -> Evaluation:
    """Token and span recall and precision over ``(text, gold spans, predicted spans)`` triples."""
    evaluation = Evaluation()
    for text, gold, predicted in documents:
        add_document(evaluation, text, gold, predicted)
    return evaluation
