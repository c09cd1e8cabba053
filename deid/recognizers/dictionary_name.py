"""Names found by the census and Faker name lists, without needing a title before them.

Nursing notes mention people bare ("garcia at bedside", "JOHN WHITAKER ADMITTED"). A listed name
that is not also an ordinary or clinical word is flagged on its own; an ambiguous one ("Brown",
"Will", "Rose") only next to another name.
A word that is no English or clinical word at all, standing right next to a flagged name, is
taken as the rest of that name ("NATHAN ZAHHAROV", "loqui mayer").
"""

from __future__ import annotations

import re
from enum import IntEnum

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.clinical_terms import DESCRIPTIVE_NAMES
from deid.recognizers.name_words import Word, words

CALENDAR_WORDS = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight".split()
)
EPONYM_USE = re.compile(
    r"(?:'s|-[A-Z][a-z]+)?[ \t]+(?:disease|syndrome|sign|test|maneuver|manoeuvre|lymphoma|sarcoma|catheter|tube|"
    r"procedure|fracture|palsy|chorea|anomaly|ulcer|tumou?r|disorder|reflex|phenomenon|criteria|score|scale|"
    r"classification|valve|drain|stockings|position|law|ataxia|dystrophy|neuropathy|anemia|virus|cells?|node|"
    r"operation|repair|shunt|block|equation|formula|method|classification|staging|type)\b",
    re.IGNORECASE,
)


class Evidence(IntEnum):
    NONE = 0
    UNKNOWN = 1  # no English or clinical word: a name only beside another name
    WEAK = 2  # a listed name that is also an ordinary word, or an initial
    STRONG = 3


class DictionaryNameRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.PATIENT.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        tokens = list(words(text))
        evidence = [self._evidence(text, token, style) for token in tokens]
        flagged = [level is Evidence.STRONG for level in evidence]
        if style is NoteStyle.MIXED:
            self._capitalised_pairs(text, tokens, evidence, flagged)
        # Two passes let "A. B. Strong" and "Strong Unknown Unknown" grow from the strong word.
        for _ in range(2):
            for index, level in enumerate(evidence):
                if not flagged[index] and level >= Evidence.UNKNOWN and self._beside_flagged(tokens, flagged, index, text):
                    flagged[index] = True
        return [
            self.result(token.start, token.end, Entity.PATIENT.value, 0.6 if evidence[index] is Evidence.STRONG else 0.5)
            for index, token in enumerate(tokens)
            if flagged[index]
        ]

    def _evidence(self, text: str, token: Word, style: NoteStyle) -> Evidence:
        lower = token.lower
        if token.is_initial:
            if token.text[0].isupper() or (style is NoteStyle.LOWER and token.text.endswith(".")):
                return Evidence.WEAK
            return Evidence.NONE
        if lower in self.lexicon.clinical_terms or lower in self.lexicon.stop_words:
            return Evidence.NONE
        if lower in CALENDAR_WORDS or EPONYM_USE.match(text, token.end):
            return Evidence.NONE
        if lower in DESCRIPTIVE_NAMES:
            return Evidence.WEAK  # "amber urine" alone, "Eve Okafor" beside a surname
        if style is NoteStyle.MIXED and token.text.isupper() and len(token.text) > 1:
            # Capitals inside well-cased text are acronyms and gene symbols, rarely names.
            listed = self.lexicon.is_name(lower) and not self.lexicon.is_common(lower)
            return Evidence.WEAK if listed else Evidence.NONE
        common = self.lexicon.is_common(lower)
        if style is NoteStyle.MIXED and token.text.islower() and common:
            return Evidence.NONE
        if not self.lexicon.is_name(lower):
            if self.lexicon.is_unknown(lower) and (style is not NoteStyle.MIXED or not token.text.islower()):
                return Evidence.UNKNOWN
            return Evidence.NONE
        if common:
            # "Brown" mid-sentence may be a name, but Title Case headings ("Human Genome") are not:
            # such a word counts only beside another name.
            return Evidence.WEAK
        if len(lower) < 3:
            return Evidence.WEAK
        if style is NoteStyle.MIXED and token.text.islower() and lower not in self.lexicon.first_names:
            return Evidence.WEAK  # lower-case words in well-cased text are rarely surnames
        return Evidence.STRONG

    @staticmethod
    def _capitalised_pairs(text: str, tokens: list[Word], evidence: list[Evidence], flagged: list[bool]) -> None:
        """"Zelvinran Lee", "Sölvi Salómonsson": capitalised unknown words paired with a listed name or each other."""
        for index in range(len(tokens) - 1):
            left, right = tokens[index], tokens[index + 1]
            if text[left.end : right.start] != " " or not (_title(left) and _title(right)):
                continue
            pair = {evidence[index], evidence[index + 1]}
            # Two capitalised words that belong to no list and no language the lexicon knows are a
            # foreign name ("Stefanía Oddgeirsdóttir"), as is one beside a listed name.
            if Evidence.UNKNOWN in pair and (Evidence.WEAK in pair or Evidence.STRONG in pair or len(pair) == 1):
                flagged[index] = flagged[index + 1] = True

    @staticmethod
    def _beside_flagged(tokens: list[Word], flagged: list[bool], index: int, text: str) -> bool:
        # An initial belongs to the name after it ("J. Smith") or, dotted, to the one before it
        # ("Lisa K. Clay"), never to one before a comma ("Smith, A 58 yo").
        token = tokens[index]
        neighbours: tuple[int, ...] = (index - 1, index + 1)
        if token.is_initial and (not token.text.endswith(".") or index == 0 or text[tokens[index - 1].end : token.start] not in (" ", "\t")):
            neighbours = (index + 1,)
        for neighbour in neighbours:
            if 0 <= neighbour < len(tokens) and flagged[neighbour]:
                left, right = sorted((tokens[index], tokens[neighbour]), key=lambda word: word.start)
                gap = text[left.end : right.start]
                if len(gap) <= 2 and all(char in " \t,." for char in gap) and ("." not in gap or left.is_initial):
                    return True
        return False



def _title(word: Word) -> bool:
    return len(word.text) > 1 and word.text[0].isupper() and word.text[1:].islower()
