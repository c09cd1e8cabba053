"""Names found by the census and Faker name lists, without needing a title before them.

Nursing notes mention people bare ("garcia at bedside", "JOHN WHITAKER ADMITTED"). A listed name
that is not also an ordinary or clinical word is flagged on its own; an ambiguous one ("Brown",
"Will", "Rose") only next to another name or, in mixed-case text, when capitalised mid-sentence.
"""

from __future__ import annotations

from presidio_analyzer import RecognizerResult

from deid.detection.entities import Entity
from deid.recognizers.base import ClinicalRecognizer, NoteStyle
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.name_words import Word, is_capitalized, words

SENTENCE_BREAK = frozenset(".:;!?\n-*#>(")


class DictionaryNameRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.PATIENT.value,)

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        super().__init__()

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        tokens = list(words(text))
        verdicts = [self._verdict(text, token, style) for token in tokens]
        results = []
        for index, (token, verdict) in enumerate(zip(tokens, verdicts)):
            if verdict == "strong":
                results.append(self.result(token.start, token.end, Entity.PATIENT.value, 0.6))
            elif verdict in ("weak", "initial") and self._next_to_strong(tokens, verdicts, index, text):
                results.append(self.result(token.start, token.end, Entity.PATIENT.value, 0.5))
        return results

    def _verdict(self, text: str, token: Word, style: NoteStyle) -> str:
        lower = token.lower
        if token.is_initial or len(lower) < 2 or lower in self.lexicon.clinical_terms:
            return "initial" if token.is_initial and token.text[0].isupper() else "no"
        if not self.lexicon.is_name(lower):
            return "no"
        mid_sentence_capital = style is NoteStyle.MIXED and is_capitalized(token) and not _sentence_start(text, token.start)
        if lower in self.lexicon.common_words:
            return "strong" if mid_sentence_capital and len(lower) > 3 and lower not in _FUNCTION_LIKE else "weak"
        if len(lower) < 3:
            return "weak"
        if style is NoteStyle.MIXED and token.text.islower():
            # Lower-case words in otherwise well-cased text are rarely names; need a neighbour.
            return "weak" if lower not in self.lexicon.first_names else "strong"
        return "strong"

    @staticmethod
    def _next_to_strong(tokens: list[Word], verdicts: list[str], index: int, text: str) -> bool:
        for neighbour in (index - 1, index + 1):
            if 0 <= neighbour < len(tokens) and verdicts[neighbour] in ("strong",):
                left, right = sorted((tokens[index], tokens[neighbour]), key=lambda word: word.start)
                gap = text[left.end : right.start]
                if len(gap) <= 3 and "\n" not in gap and all(char in " \t,." for char in gap):
                    return True
        return False


def _sentence_start(text: str, start: int) -> bool:
    position = start - 1
    while position >= 0 and text[position] in " \t\"'":
        position -= 1
    return position < 0 or text[position] in SENTENCE_BREAK


_FUNCTION_LIKE = frozenset("will may can said case long note plan page mark rose".split())
