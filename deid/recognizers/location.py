"""Towns and places named after a residence or travel cue: "lives in Quincy", "from Haiti",
"resident of salem", "visiting from new bedford"."""

from __future__ import annotations

import re

from presidio_analyzer import RecognizerResult

from deid.detection.entities import Entity
from deid.recognizers.base import ClinicalRecognizer, NoteStyle
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.name_words import TOKEN, Word

CUE = re.compile(
    r"(?<![A-Za-z])(?:lives|living|lived|resides|residing|resident|moved|relocated|vacation|vacationing|traveled|"
    r"travelled|trip|visiting|native|born|home|house|apartment|works|working|employed|grew up)"
    r"(?:[ \t]+(?:in|at|to|from|of|near|on))+[ \t]+",
    re.IGNORECASE,
)
NOT_PLACES = frozenset(
    "a an the his her their home bed town city area state country house apartment nursing rehab facility hospital "
    "icu floor unit room same assisted senior group shelter".split()
)


class LocationRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.LOCATION.value,)

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        super().__init__()

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for cue in CUE.finditer(text):
            start = end = cue.end()
            position = cue.end()
            for _ in range(3):
                match = TOKEN.match(text, position)
                if match is None:
                    break
                word = Word(match.start(), match.end(), match.group())
                lower = word.lower
                if lower in NOT_PLACES or lower in self.lexicon.clinical_terms:
                    break
                if style is NoteStyle.MIXED and not word.text[0].isupper():
                    break
                if style is not NoteStyle.MIXED and lower in self.lexicon.common_words and end == start:
                    break
                end = word.end
                position = end
                while position < len(text) and text[position] in " \t" and position - end < 2:
                    position += 1
            if end > start:
                results.append(self.result(start, end, Entity.LOCATION.value, 0.6))
        return results
