"""Generic features of each word of a note, for the learned filter over the rule recognizers.

The rule recognizers propose PHI generously; whether a word really is PHI depends on evidence
that generalises across hospitals and patients: which recognizers fired and how sure they were,
the word's shape (case, length, digits), the note's casing style, which shipped word lists know
the word, how often it recurs in the note, where it sits on its line, and the words around it
on that line. A word's own spelling is a feature only when the word is in a
public vocabulary (the shipped common words, stop words or clinical terms), so a model fit on
real notes learns "after 'dr'" or "'hospital' is generic", never a particular person's name.

The same extraction runs when the model is fit (``bench/deid_cv.py``) and when it is applied
(``deid.detection.token_filter``), so the two cannot drift apart.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import NoteStyle
from deid.recognizers.lexicon import Lexicon

TOKEN = re.compile(r"[^\W_]+")  # letters and digits of any script: "Vilhjálmur" is one word
SHAPE_RUNS = re.compile(r"(.)\1+")
LINE_BREAK = re.compile(r"\n")
CONTEXT = 3
WORD_CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Word:
    """What the features need to know about one distinct spelling, computed once per process."""

    shape: str
    length: str
    lists: str
    vocab: str | None
    context: str


def shape_of(token: str) -> str:
    """'Smith' -> 'Xx', 'ICU' -> 'X', '7' -> 'd', 'q2h' -> 'xdx': case and digit pattern, runs folded."""
    mapped = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in token)
    return SHAPE_RUNS.sub(r"\1", mapped)


def _length_bucket(token: str) -> str:
    size = len(token)
    return str(size) if size <= 4 else "5-7" if size <= 7 else "8+"


def _digit_value(token: str) -> str:
    """Ranges that separate days, months, years and clock times from other numbers."""
    value = int(token)
    if len(token) == 4:
        return "year4" if 1900 <= value <= 2099 else "time4" if value <= 2400 and value % 100 < 60 else "num4"
    if len(token) > 4:
        return "long"
    if value == 0:
        return "zero"
    return "le12" if value <= 12 else "le31" if value <= 31 else "le99" if value <= 99 else "num3"


class FeatureExtractor:
    """Feature strings per word of a text; one instance per detector, it caches per spelling."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._vocabulary = lexicon.common_words | lexicon.clinical_terms | lexicon.stop_words
        self._words: dict[str, Word] = {}
        self._own_features: dict[tuple[str, str], tuple[str, ...]] = {}

    def word(self, token: str) -> Word:
        cached = self._words.get(token)
        if cached is not None:
            return cached
        if len(self._words) > WORD_CACHE_LIMIT:
            self._words.clear()
        lower = token.lower()
        lex = self.lexicon
        if token.isdecimal():
            lists = "num:" + _digit_value(token)
        else:
            flags = [
                "F" if lower in lex.first_names else "",
                "L" if lower in lex.last_names else "",
                "C" if lex.is_common(lower) else "",
                "K" if lower in lex.clinical_terms else "",
                "D" if lower in lex.drug_names else "",
                "P" if lower in lex.places else "",
                "S" if lower in lex.stop_words else "",
            ]
            lists = "".join(flags) or "unknown"
        vocab = lower if lower in self._vocabulary else None
        shape = shape_of(token)
        word = Word(shape, _length_bucket(token), lists, vocab, vocab if vocab is not None else "~" + shape + ":" + lists)
        self._words[token] = word
        return word

    def _own(self, token: str, word: Word, style: str) -> list[str]:
        """The features of a word by itself in a note of ``style``: the same for every occurrence."""
        key = (token, style)
        cached = self._own_features.get(key)
        if cached is None:
            if len(self._own_features) > WORD_CACHE_LIMIT:
                self._own_features.clear()
            cached = (
                "st=" + style,
                "sh=" + word.shape,
                "st|sh=" + style + "|" + word.shape,
                "len=" + word.length,
                "lex=" + word.lists,
                "st|lex=" + style + "|" + word.lists,
                "sh|lex=" + word.shape + "|" + word.lists,
            )
            if word.vocab is not None:
                cached += ("w=" + word.vocab, "st|w=" + style + "|" + word.vocab)
            self._own_features[key] = cached
        return list(cached)

    def features(
        self, text: str, style: NoteStyle, candidates: Sequence[RecognizerResult]
    ) -> tuple[list[tuple[int, int]], list[list[str]], list[list[tuple[RecognizerResult, str]]]]:
        """Every word's (start, end), its feature strings and the rule results covering it.

        Context stops at line breaks: a note's lines are headings, list items and signatures, and
        a word on the next line says little about this one (it also keeps a name's features the
        same wherever a line of text is pasted).
        """
        spans = [match.span() for match in TOKEN.finditer(text)]
        words = [self.word(text[start:end]) for start, end in spans]
        covering = _covering(spans, candidates)
        groups = _joined_groups(text, spans, words)
        lines = _line_numbers(text, spans)
        first_of_line, line_sizes = _line_positions(lines)
        repeats = _repeats(text, spans, covering)
        rows: list[list[str]] = []
        count = len(spans)
        st = style.value
        for index, ((start, end), word) in enumerate(zip(spans, words, strict=True)):
            line = lines[index]
            before = _separator(text[spans[index - 1][1] if index else 0 : start], index == 0, before=True)
            after = _separator(text[end : spans[index + 1][0] if index + 1 < count else len(text)], index + 1 == count)
            row = self._own(text[start:end], word, st)
            position = index - first_of_line[index]
            place = ("0" if position == 0 else "1" if position == 1 else "2+") + "/" + _size_bucket(line_sizes[line])
            row += [
                "ps=" + before, "ns=" + after, "grp=" + groups[index], "ps|sh=" + before + "|" + word.shape,
                "ns|sh=" + after + "|" + word.shape, "ps|ns=" + before + "|" + after, "line=" + place,
                "line|sh=" + place + "|" + word.shape, "rep=" + repeats[index], "rep|sh=" + repeats[index] + "|" + word.shape,
            ]
            same_line = [
                offset for offset in range(-CONTEXT, CONTEXT + 1) if 0 <= index + offset < count and lines[index + offset] == line
            ]
            context = {offset: words[index + offset] for offset in same_line}
            left, right = _around(context, 1, "context")
            for offset in range(1, CONTEXT + 1):
                far_left, far_right = _around(context, offset, "context")
                row.append(f"c-{offset}={far_left}")
                row.append(f"c+{offset}={far_right}")
                if offset > 1:
                    row.append("L=" + far_left)
                    row.append("R=" + far_right)
            row.append("c-1|lex=" + left + "|" + word.lists)
            row.append("c+1|lex=" + right + "|" + word.lists)
            row.append("c-1|c+1=" + left + "|" + right)
            left_shape, right_shape = _around(context, 1, "shape")
            far_left_shape, far_right_shape = _around(context, 2, "shape")
            row.append("sh3=" + left_shape + "|" + word.shape + "|" + right_shape)
            row.append("sh-2=" + far_left_shape + "|" + left_shape + "|" + word.shape)
            row.append("sh+2=" + word.shape + "|" + right_shape + "|" + far_right_shape)
            hits = covering[index]
            if hits:
                size = _candidate_size(hits)
                row.append("r:n=" + str(min(len(hits), 3)) + "|" + size)
                row.append("r:types=" + _entities(hits))
                row.append("r:types|lex=" + _entities(hits) + "|" + word.lists)
                for result, where in hits:
                    name = _recognizer(result) + "|" + result.entity_type
                    row.append("r=" + name)
                    row.append(f"r|s={name}|{result.score:.2f}")
                    row.append("r|pos=" + name + "|" + where)
                    row.append("r|lex=" + name + "|" + word.lists)
                    row.append("r|st|sh=" + name + "|" + st + "|" + word.shape)
                    row.append("r|rep=" + name + "|" + repeats[index])
                    row.append("r|line=" + name + "|" + place)
                    row.append("r|c-1=" + name + "|" + left)
                    row.append("r|c+1=" + name + "|" + right)
                    if word.vocab is not None:
                        row.append("r|w=" + name + "|" + word.vocab)
            else:
                row.append("none|st|lex=" + st + "|" + word.lists)
                row.append("none|sh=" + word.shape)
            row.append("pr=" + (_entities(covering[index - 1]) if index and lines[index - 1] == line else "<s>"))
            row.append("nr=" + (_entities(covering[index + 1]) if index + 1 < count and lines[index + 1] == line else "</s>"))
            rows.append(row)
        return spans, rows, covering


def _around(context: dict[int, Word], offset: int, field: str) -> tuple[str, str]:
    """A field of the words ``offset`` to the left and right on the same line, or the line's edge."""
    left, right = context.get(-offset), context.get(offset)
    return (
        getattr(left, field) if left is not None else "<s>",
        getattr(right, field) if right is not None else "</s>",
    )


def _size_bucket(size: int) -> str:
    return "1" if size == 1 else "2-3" if size <= 3 else "4-8" if size <= 8 else "9+"


def _line_numbers(text: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """The line each word is on (0-based)."""
    breaks = [match.start() for match in LINE_BREAK.finditer(text)]
    return [bisect.bisect_left(breaks, start) for start, _ in spans]


def _line_positions(lines: Sequence[int]) -> tuple[list[int], dict[int, int]]:
    """For each word, the index of its line's first word; and the number of words on each line."""
    first: list[int] = []
    sizes: dict[int, int] = {}
    start = 0
    for index, line in enumerate(lines):
        if index and line != lines[index - 1]:
            start = index
        first.append(start)
        sizes[line] = sizes.get(line, 0) + 1
    return first, sizes


def _repeats(
    text: str, spans: Sequence[tuple[int, int]], covering: Sequence[Sequence[tuple[RecognizerResult, str]]]
) -> list[str]:
    """How often the word's spelling (any case) recurs in the note, and whether rules proposed it elsewhere.

    A surname a rule caught once after "Dr." is as likely PHI where it stands alone; clinical
    shorthand recurs everywhere and is seldom proposed.
    """
    occurrences: dict[str, int] = {}
    proposed: dict[str, int] = {}
    keys = [text[start:end].lower() for start, end in spans]
    for key, hits in zip(keys, covering, strict=True):
        occurrences[key] = occurrences.get(key, 0) + 1
        if hits:
            proposed[key] = proposed.get(key, 0) + 1
    out = []
    for key, hits in zip(keys, covering, strict=True):
        seen = occurrences[key]
        elsewhere = proposed.get(key, 0) - (1 if hits else 0)
        times = "1" if seen == 1 else "2-3" if seen <= 3 else "4+"
        out.append(times + ("|none" if seen == 1 else "|all" if elsewhere >= seen - 1 else "|some" if elsewhere > 0 else "|no"))
    return out


def _candidate_size(hits: Sequence[tuple[RecognizerResult, str]]) -> str:
    """Whether the word stands alone in its candidates or is part of a longer one."""
    return "S" if all(where == "S" for _, where in hits) else "M"


def _recognizer(result: RecognizerResult) -> str:
    metadata = result.recognition_metadata or {}
    return str(metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY, "?"))


def _entities(hits: list[tuple[RecognizerResult, str]]) -> str:
    return "+".join(sorted({result.entity_type for result, _ in hits})) or "none"


def _separator(gap: str, text_edge: bool, before: bool = False) -> str:
    """The characters between two words, whitespace folded: ' ', '/', '. ', 'NL:' ...

    Across a line break (or at either end of the text) only what is on the word's own line counts
    ('NL' and up to two marks), so the separators of other lines cannot change how a word is judged.
    """
    if "\n" in gap or text_edge:
        own = gap.rsplit("\n", 1)[-1] if before else gap.split("\n", 1)[0]
        return "NL" + own.strip()[:2]
    folded = " ".join(gap.split()) if gap.strip() else (" " if gap else "")
    if gap and gap[0].isspace() and not folded.startswith(" "):
        folded = " " + folded
    if gap and gap[-1].isspace() and not folded.endswith(" "):
        folded = folded + " "
    return folded[:4]


def _joined_groups(text: str, spans: list[tuple[int, int]], words: list[Word]) -> list[str]:
    """Shape of the run of words joined without spaces ('7/22' -> 'd/d', '555-1234' -> 'd-d')."""
    groups = [""] * len(spans)
    index = 0
    while index < len(spans):
        last = index
        while (
            last + 1 < len(spans)
            and spans[last + 1][0] - spans[last][1] <= 2
            and not any(c.isspace() for c in text[spans[last][1] : spans[last + 1][0]])
            and spans[last + 1][0] > spans[last][1]
        ):
            last += 1
        if last == index:
            groups[index] = "single"
        else:
            parts = []
            for k in range(index, last + 1):
                parts.append(words[k].shape[:3])
                if k < last:
                    parts.append(text[spans[k][1] : spans[k + 1][0]])
            label = "".join(parts)[:16]
            for k in range(index, last + 1):
                groups[k] = label
        index = last + 1
    return groups


def _covering(
    spans: list[tuple[int, int]], candidates: Sequence[RecognizerResult]
) -> list[list[tuple[RecognizerResult, str]]]:
    """For each word, the candidates overlapping it and where it sits in each (B, I, E or S)."""
    covering: list[list[tuple[RecognizerResult, str]]] = [[] for _ in spans]
    starts = [start for start, _ in spans]
    for result in candidates:
        first = bisect.bisect_right(starts, result.start) - 1
        if first < 0 or spans[first][1] <= result.start:
            first += 1
        inside = []
        k = first
        while 0 <= k < len(spans) and spans[k][0] < result.end:
            if spans[k][1] > result.start:
                inside.append(k)
            k += 1
        for position, k in enumerate(inside):
            if len(inside) == 1:
                where = "S"
            elif position == 0:
                where = "B"
            elif position == len(inside) - 1:
                where = "E"
            else:
                where = "I"
            covering[k].append((result, where))
    return covering
