"""Keep evaluation items out of the training set, so a benchmark score is not a memory test.

An example is contaminated when it overlaps any evaluation item the appliance ships or is
configured with (see :func:`appliance.evaluate.catalog.evaluation_texts`) in either of two ways:

- **question match**: a user turn, normalised (lower case, words only, single spaces), equals
  an evaluation question;
- **long n-gram**: the example shares a run of :data:`NGRAM_WORDS` (13) consecutive normalised
  words with an evaluation item's question, answer, abstract or options. Thirteen words is the
  overlap length used by published contamination studies of language-model benchmarks: long
  enough that ordinary medical phrasing ("is inherited in an autosomal dominant pattern")
  does not match by chance, short enough that a copied sentence of an answer always does.

The index is built once: a set of hashes of every 13-word window of every evaluation text
(about 150,000 for the shipped benchmarks), plus the normalised questions. Each example is then
read once, so the check is linear in the training data. The hashes are Python's own string
hashes, valid within one process only; nothing of the index is stored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from appliance.evaluate.catalog import EvalText

NGRAM_WORDS = 13
_WORD = re.compile(r"[a-z0-9]+")


def normalized_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _windows(words: list[str]) -> Iterable[int]:
    for start in range(len(words) - NGRAM_WORDS + 1):
        yield hash(" ".join(words[start : start + NGRAM_WORDS]))


@dataclass
class ContaminationIndex:
    """Normalised questions and 13-gram hashes of the evaluation items, each mapped to its benchmark."""

    questions: dict[str, str] = field(default_factory=dict)
    grams: dict[int, str] = field(default_factory=dict)
    items: Counter[str] = field(default_factory=Counter)

    @classmethod
    def build(cls, texts: Iterable[EvalText]) -> ContaminationIndex:
        index = cls()
        for text in texts:
            index.items[text.benchmark] += 1
            question = " ".join(normalized_words(text.question))
            if question:
                index.questions.setdefault(question, text.benchmark)
            for passage in text.passages:
                for gram in _windows(normalized_words(passage)):
                    index.grams.setdefault(gram, text.benchmark)
        return index

    def match(self, questions: Iterable[str], content: str) -> str | None:
        """The benchmark an example overlaps (question match first), or None when it is clean."""
        for question in questions:
            found = self.questions.get(" ".join(normalized_words(question)))
            if found:
                return found
        for gram in _windows(normalized_words(content)):
            found = self.grams.get(gram)
            if found:
                return found
        return None
