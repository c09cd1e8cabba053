"""Employers and other organisations that would identify the patient: "works at Harbor Freight",
"retired from dunmore logistics", "Quinlan & Ross LLC", "the Kessler School".

Safe Harbor counts them among "other unique identifying characteristics"; they are reported as
``HOSPITAL`` (a named institution) because the appliance's entity vocabulary has no separate
organisation type. Two kinds of evidence: an employment cue before the name, or a corporate or
school suffix after it; a suffix alone needs a name before it that is no ordinary word ("the
nursing school" stays).
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.name_words import TOKEN, Word

EMPLOYMENT_CUE = re.compile(
    r"(?<![A-Za-z])(?:works?|working|worked|employed|employee|retired|job|volunteers?|teaches|studies|student)"
    r"(?:[ \t]+as[ \t]+(?:an?[ \t]+)?[A-Za-z\-]+(?:[ \t]+[A-Za-z\-]+)?)?[ \t]+(?:at|for|by|from|of|with)[ \t]+"
    r"(?:the[ \t]+)?",
    re.IGNORECASE,
)
SUFFIX = re.compile(
    r"(?<![A-Za-z])(?:inc|llc|llp|corp|corporation|company|co|ltd|logistics|industries|university|college|"
    r"school|academy|bank|foundation|associates|partners|enterprises|holdings|technologies|systems|bakery|"
    r"restaurant|diner|motors|construction|manufacturing|sons|brothers|plc)\b(?:(?<=inc|llc|orp|ltd)\.|(?<=co)\.)?",
    re.IGNORECASE,
)
CONNECTORS = frozenset({"&", "and", "of", "the"})
# Banks of things, not of money: departments and charities with no one's name.
STOCK_BANKS = frozenset("blood food tissue eye milk sperm bone cord organ skin".split())
MAX_WORDS = 5
NAME_PART_BEFORE = re.compile(r"([A-Za-z][A-Za-z'\-]*|&)[ \t]+$")
# What may stand between two words of one name: blanks, a comma, connectors ("Woods and White").
LIST_GAP = re.compile(r"[ \t]*,?[ \t]*(?:(?:&|and|of|the)[ \t]+)*", re.IGNORECASE)
WORD_OR_AMPERSAND = re.compile(r"&|" + TOKEN.pattern)
# Where people work that names no one: "works at home", "WORKS FOR HIMSELF".
GENERIC_WORKPLACES = frozenset(
    "home himself herself themselves night nights days weekends part full times local family construction "
    "restaurant school hospital store office farm factory".split()
)


class OrganizationRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.HOSPITAL.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for cue in EMPLOYMENT_CUE.finditer(text):
            end = self._name_end(text, cue.end(), style)
            if end > cue.end():
                results.append(self.result(cue.end(), end, Entity.HOSPITAL.value, 0.6))
        for suffix in SUFFIX.finditer(text):
            if style is not NoteStyle.MIXED and suffix.group().lower() == "inc":
                continue  # without case, "sternal inc" is an incision
            if suffix.group().lower() == "bank" and _word_before(text, suffix.start()) in STOCK_BANKS:
                continue  # "blood bank" is a hospital department, though Blood is a surname
            start = self._name_start(text, suffix.start(), style)
            if start < suffix.start():
                results.append(self.result(start, suffix.end(), Entity.HOSPITAL.value, 0.6))
        return results

    def _name_end(self, text: str, position: int, style: NoteStyle) -> int:
        """End of the organisation's name after an employment cue (``position`` if none)."""
        end = position
        for index in range(MAX_WORDS):
            match = WORD_OR_AMPERSAND.match(text, position)
            if match is None:
                break
            word = Word(match.start(), match.end(), match.group())
            lower = word.lower
            if lower in CONNECTORS and index:
                position = _skip_blanks(text, word.end)
                continue
            if index and not LIST_GAP.fullmatch(text, end, word.start):
                break
            if lower in self.lexicon.stop_words or lower in self.lexicon.clinical_terms:
                break
            if style is NoteStyle.MIXED and not word.text[0].isupper():
                break
            if lower in GENERIC_WORKPLACES or (index == 0 and self.lexicon.is_common(lower) and not _name_like(self.lexicon, lower)):
                break
            end = word.end
            position = _skip_blanks(text, end)
            if text.startswith(",", position):  # partner lists: "Hall, Washington and Lawrence"
                position = _skip_blanks(text, position + 1)
        return end

    def _name_start(self, text: str, position: int, style: NoteStyle) -> int:
        """Start of the name before a corporate suffix; every word must look like a proper name."""
        start = position
        for _ in range(MAX_WORDS):
            match = NAME_PART_BEFORE.search(text, max(0, start - 30), start)
            if match is None:
                break
            word = match.group(1)
            lower = word.lower()
            if lower in CONNECTORS:
                start = match.start(1)
                continue
            if lower in self.lexicon.stop_words or lower in self.lexicon.clinical_terms:
                break
            if style is NoteStyle.MIXED and not word[0].isupper():
                break
            if self.lexicon.is_common(lower) and not self.lexicon.is_name(lower):
                break
            start = match.start(1)
        while start < position and text[start:position].split()[0].lower() in CONNECTORS:
            start += len(text[start:position].split()[0])
            start += len(text[start:position]) - len(text[start:position].lstrip())
        return start


def _name_like(lexicon: Lexicon, lower: str) -> bool:
    """A listed name, or a double-barrelled one ("holmes-phillips")."""
    return lexicon.is_name(lower) or ("-" in lower and all(lexicon.is_name(part) for part in lower.split("-")))


def _word_before(text: str, position: int) -> str:
    """The lower-cased word ending at the blanks before ``position`` ("" if none)."""
    match = NAME_PART_BEFORE.search(text, max(0, position - 30), position)
    return match.group(1).lower() if match else ""


def _skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t":
        position += 1
    return position
