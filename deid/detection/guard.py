"""Keeping detection linear in its input whatever the input, with offsets mapped back exactly.

Detection runs on attacker-controlled text (an API prompt, a note pasted from anywhere). Two
things in the pipeline cost more than linear time on pathological text: regular expressions
that retry a run of blanks or punctuation from every position inside it, and spaCy's tokenizer,
which peels prefixes and suffixes off one whitespace-free chunk one at a time. Rather than rely
on every present and future pattern being written carefully, the detector sees a compacted view:

- a run of more than ``RUN_KEPT`` copies of one character that is neither a letter nor a digit
  keeps its first ``RUN_KEPT`` copies. No identifier contains 17 spaces, colons or dashes in a
  row, and a pattern that looks at a separator run sees the same text up to that length, so what
  is found does not change; spans are mapped back to the original offsets.
- spaCy is given the compacted text with a blank every ``CHUNK_LIMIT`` characters of any chunk
  that long, a same-length copy, so token offsets stay those of the compacted text. Only the
  optional statistical NER reads spaCy's tokens, and no name or date is 64 characters without a
  space.

Runs of letters or digits are never shortened: a long number may be an identifier.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from deid.detection.spans import DetectedSpan

RUN_KEPT = 16
CHUNK_LIMIT = 64
LONG_RUN = re.compile(rf"([^\w]|_)\1{{{RUN_KEPT},}}")
LONG_CHUNK = re.compile(rf"\S{{{CHUNK_LIMIT + 1},}}")


@dataclass(frozen=True, slots=True)
class Compacted:
    """``text`` with long separator runs shortened, and the map back to the original offsets.

    ``cuts[i]`` is the compacted offset where the i-th removed stretch was, ``removed[i]`` how
    many original characters had been removed up to and including it.
    """

    text: str
    cuts: tuple[int, ...]
    removed: tuple[int, ...]

    @property
    def changed(self) -> bool:
        return bool(self.cuts)

    def start(self, offset: int) -> int:
        """The original offset of a span starting at compacted ``offset``: a start at a cut
        belongs to the character after the removed stretch."""
        index = bisect.bisect_right(self.cuts, offset)
        return offset + (self.removed[index - 1] if index else 0)

    def end(self, offset: int) -> int:
        """The original offset of a span ending at compacted ``offset``: an end at a cut closes
        before the removed stretch."""
        index = bisect.bisect_left(self.cuts, offset)
        return offset + (self.removed[index - 1] if index else 0)


def compact(text: str) -> Compacted:
    """Shorten every run of one separator character longer than ``RUN_KEPT``; linear in ``text``."""
    parts: list[str] = []
    cuts: list[int] = []
    removed: list[int] = []
    cursor = 0
    total = 0
    for run in LONG_RUN.finditer(text):
        keep_end = run.start() + RUN_KEPT
        parts.append(text[cursor:keep_end])
        cuts.append(keep_end - total)
        total += run.end() - keep_end
        removed.append(total)
        cursor = run.end()
    if not cuts:
        return Compacted(text, (), ())
    parts.append(text[cursor:])
    return Compacted("".join(parts), tuple(cuts), tuple(removed))


def restore(spans: list[DetectedSpan], view: Compacted) -> list[DetectedSpan]:
    """Spans found in ``view.text`` with the offsets they have in the original text."""
    if not view.changed:
        return spans
    return [DetectedSpan(view.start(span.start), view.end(span.end), span.entity_type, span.score) for span in spans]


def tokenizer_text(text: str) -> str:
    """``text`` with a blank every ``CHUNK_LIMIT`` characters of any longer whitespace-free chunk
    (same length, so offsets hold), which keeps spaCy's prefix and suffix peeling linear."""
    if LONG_CHUNK.search(text) is None:
        return text

    def split(chunk: re.Match[str]) -> str:
        value = chunk.group()
        pieces = " ".join(value[index : index + CHUNK_LIMIT] for index in range(0, len(value), CHUNK_LIMIT + 1))
        return pieces.ljust(len(value))

    return LONG_CHUNK.sub(split, text)
