"""Word-level evidence for names, shared by the title and dictionary name recognizers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from deid.recognizers.base import NoteStyle
from deid.recognizers.lexicon import Lexicon

TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]\.?")
# Between two parts of one name only blanks, a comma ("Smith, John") or nothing else may stand.
NAME_GAP = re.compile(r"[ \t]{1,3}|,[ \t]{0,2}|\.[ \t]{0,2}")


@dataclass(frozen=True, slots=True)
class Word:
    start: int
    end: int
    text: str

    @property
    def lower(self) -> str:
        return self.text.lower().rstrip(".")

    @property
    def is_initial(self) -> bool:
        return len(self.text.rstrip(".")) == 1


def words(text: str) -> Iterator[Word]:
    for match in TOKEN.finditer(text):
        yield Word(match.start(), match.end(), match.group())


def is_capitalized(word: Word) -> bool:
    return word.text[0].isupper() and not word.text.isupper()


def looks_like_name(word: Word, lexicon: Lexicon, style: NoteStyle) -> bool:
    """Could this word be (part of) a name, given some outside context already points to one?"""
    lower = word.lower
    if word.is_initial:
        return word.text[0].isupper()
    if lower in lexicon.clinical_terms or not word.text.replace("'", "").replace("-", "").isalpha():
        return False
    if lower in lexicon.common_words:
        # An ordinary word after "Dr" is still a name when written like one ("Dr. Brown").
        return style is NoteStyle.MIXED and is_capitalized(word) and lexicon.is_name(lower)
    if style is NoteStyle.MIXED:
        return is_capitalized(word) or word.text.isupper() or lexicon.is_name(lower)
    return True


def extend_name(text: str, first: Word, lexicon: Lexicon, style: NoteStyle, limit: int = 3) -> tuple[int, int]:
    """Grow a name from ``first`` over following name-like words ("John A. Smith")."""
    start, end = first.start, first.end
    position = end
    for _ in range(limit):
        gap = NAME_GAP.match(text, position)
        if gap is None or "\n" in gap.group():
            break
        match = TOKEN.match(text, gap.end())
        if match is None:
            break
        word = Word(match.start(), match.end(), match.group())
        if not looks_like_name(word, lexicon, style) or not _strong_name_part(word, lexicon, style):
            break
        end = word.end
        position = end
    return start, end


def _strong_name_part(word: Word, lexicon: Lexicon, style: NoteStyle) -> bool:
    """Continuation words must look like names by list or by capitals, not merely be unknown words."""
    if word.is_initial:
        return True
    if lexicon.is_name(word.lower):
        return True
    return style is NoteStyle.MIXED and (is_capitalized(word) or word.text.isupper())
