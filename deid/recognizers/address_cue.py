"""Addresses announced by their cue ("Address: ...", "lives at ...", "resides at ..."), in any shape.

The street recognizer needs a street-type word ("Elm Street"); foreign or unusual addresses
("86036 Rua do Arenque 1634, Goiania", "Brucker Bundesstrasse 31") and bare house names have none.
After an explicit cue the text up to the end of the line or sentence is the address, whatever
its words are. "Lives at home with wife" is not an address: after a conversational cue the
address must start with a house number (or, in mixed-case text, a capitalised word).
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

HEADER = re.compile(
    r"(?<![A-Za-z])(?:(?:home|mailing|street|postal|permanent|current|pt'?s?|patient'?s?)[ \t]+)?(?:address|addr)\.?"
    r"[ \t]*(?::|#|is|-)[ \t]*",
    re.IGNORECASE,
)
SPOKEN = re.compile(r"(?<![A-Za-z])(?:lives|living|resides|residing|reside|live)[ \t]+(?:at|on)[ \t]+", re.IGNORECASE)
# Words that end an address inside a sentence: "lives at 12 Oak St with his wife".
STOP_WORD = re.compile(
    r"[ \t,]+(?:with|and (?:his|her|their)|who|where|since|for|alone|w/|but|which|until|x\d)\b", re.IGNORECASE
)
# A full stop ends the address unless it closes an abbreviation or an initial ("Apt. 4", "N. Main").
FULL_STOP = re.compile(r"(?P<word>\w*)\.(?=\s|$)")
ABBREVIATIONS = frozenset("apt ste ave blvd rd st dr ln ct no rte hwy pl mt ft sq pkwy".split())
LINE_END = re.compile(r"[\n;()\[\]|]")
MAX_CHARS = 90


class AddressCueRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.LOCATION.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for cue, strict in ((HEADER, False), (SPOKEN, True)):
            for match in cue.finditer(text):
                span = self._address_after(text, match.end(), style, strict)
                if span is not None:
                    results.append(self.result(*span, Entity.LOCATION.value, 0.8 if strict else 0.85))
        return results

    @staticmethod
    def _address_after(text: str, start: int, style: NoteStyle, strict: bool) -> tuple[int, int] | None:
        window = text[start : start + MAX_CHARS]
        if not window or not (window[0].isdigit() or (window[0].isupper() and (style is NoteStyle.MIXED or not strict))):
            return None
        end = len(window)
        for boundary in (LINE_END, STOP_WORD):
            found = boundary.search(window)
            if found is not None:
                end = min(end, found.start())
        for stop in FULL_STOP.finditer(window, 0, end):
            word = stop.group("word")
            initial = len(word) == 1 and word.isalpha()
            if word and not initial and word.lower() not in ABBREVIATIONS:
                end = stop.start() + len(word)
                break
        address = window[:end].rstrip(" \t,.:-")
        if len(address) < 3 or not any(ch.isalnum() for ch in address):
            return None
        return start, start + len(address)
