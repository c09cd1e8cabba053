"""Word-level evidence for names, shared by the title and dictionary name recognizers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from deid.recognizers.base import NoteStyle
from deid.recognizers.lexicon import Lexicon

# Words of letters (any script); never a letter glued to a slash ("d/w", "s/p") or a digit.
# Atomic, so "Denis399" yields no word at all rather than "Deni".
TOKEN = re.compile(r"(?<![/\\\w])(?>[^\W\d_](?:[^\W\d_]|['\-](?=[^\W\d_]))+|[^\W\d_]\.?)(?![/\\\d])")
# Between two parts of one name only blanks, a comma ("Smith, John") or an initial's dot may stand.
NAME_GAP = re.compile(r"[ \t]{1,3}|,[ \t]{0,2}|\.[ \t]{0,2}")


@dataclass(frozen=True, slots=True)
class Word:
    start: int
    end: int
    text: str

    @property
    def lower(self) -> str:
        lower = self.text.lower().rstrip(".")
        return lower[:-2] if lower.endswith("'s") and len(lower) > 3 else lower

    @property
    def is_initial(self) -> bool:
        return len(self.text.rstrip(".")) == 1


def words(text: str) -> Iterator[Word]:
    for match in TOKEN.finditer(text):
        yield Word(match.start(), match.end(), match.group())


def is_capitalized(word: Word) -> bool:
    return word.text[0].isupper() and not word.text.isupper()


def looks_like_name(word: Word, lexicon: Lexicon, style: NoteStyle) -> bool:
    """Could this word be (part of) a name, given that outside context already points to one?

    Listed names qualify even when they are ordinary words ("Dr. Brown", "DR WHITE"); other
    words only when they are no English or clinical word at all ("Dr. Okafor"). In mixed-case
    text a lower-case ordinary word never does.
    """
    lower = word.lower
    if word.is_initial:
        return word.text[0].isupper() or (style is NoteStyle.LOWER and word.text.endswith("."))
    if lower in lexicon.clinical_terms or lower in lexicon.stop_words:
        return False
    if style is NoteStyle.MIXED and word.text.islower() and lexicon.is_common(lower):
        return False
    return lexicon.is_name(lower) or lexicon.is_unknown(lower) or (style is NoteStyle.MIXED and is_capitalized(word)
                                                                   and not lexicon.is_common(lower))


def next_word(text: str, position: int) -> Word | None:
    """The word right after ``position`` if only a name gap (no line break) separates them."""
    gap = NAME_GAP.match(text, position)
    if gap is None:
        return None
    match = TOKEN.match(text, gap.end())
    if match is None:
        return None
    return Word(match.start(), match.end(), match.group())


def extend_name(text: str, first: Word, lexicon: Lexicon, style: NoteStyle, limit: int = 3) -> tuple[int, int]:
    """Grow a name from ``first`` over following name-like words ("John A. Smith")."""
    end = first.end
    previous = first
    for _ in range(limit):
        word = next_word(text, end)
        if word is None or not looks_like_name(word, lexicon, style):
            break
        if style is NoteStyle.MIXED and not (word.text[0].isupper() or word.is_initial):
            break
        if "." in text[end : word.start] and not previous.is_initial and lexicon.is_common(word.lower):
            break  # a sentence ended: "niece michael. works at ..."
        end = word.end
        previous = word
    return first.start, end
