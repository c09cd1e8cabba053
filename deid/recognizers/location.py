"""Towns and places named after a residence or travel cue: "lives in Quincy", "from Haiti",
"resident of salem", "visiting from new bedford"."""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.name_words import TOKEN, Word

CUE = re.compile(
    r"(?<![A-Za-z])(?:lives|living|lived|resides|residing|resident|moved|relocated|vacation|vacationing|traveled|"
    r"travelled|trip|visiting|native|born|home|house|apartment|works|working|employed|grew up)"
    r"(?:[ \t]+(?:in|at|to|from|of|near|on))+[ \t]+",
    re.IGNORECASE,
)
# In mixed-case text a bare "in"/"from" before a capitalised word that is no English word is a cue too.
BARE_CUE = re.compile(r"(?<![A-Za-z])(?:in|from|near)[ \t]+(?=[A-Z][a-z])")
PLACE_PREFIXES = frozenset("new west east north south lake port mount mt fort saint st san santa los las el la le".split())
NOT_PLACES = frozenset(
    "a an the his her their home bed town city area state country house apartment nursing rehab facility hospital "
    "icu floor unit room same assisted senior group shelter".split()
)


class LocationRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.LOCATION.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for cue in CUE.finditer(text):
            end = self._place_end(text, cue.end(), style, strict=False)
            if end > cue.end():
                results.append(self.result(cue.end(), end, Entity.LOCATION.value, 0.6))
        if style is NoteStyle.MIXED:
            for cue in BARE_CUE.finditer(text):
                end = self._place_end(text, cue.end(), style, strict=True)
                if end > cue.end():
                    results.append(self.result(cue.end(), end, Entity.LOCATION.value, 0.45))
        return results

    def _place_end(self, text: str, start: int, style: NoteStyle, strict: bool) -> int:
        """End of a place name of up to three words starting at ``start`` (``start`` if none)."""
        end = position = start
        prefix = False
        for _ in range(3):
            match = TOKEN.match(text, position)
            if match is None:
                break
            word = Word(match.start(), match.end(), match.group())
            lower = word.lower
            if lower in NOT_PLACES or lower in self.lexicon.clinical_terms or lower in self.lexicon.stop_words:
                break
            if style is NoteStyle.MIXED and not word.text[0].isupper():
                break
            if end == start and lower in PLACE_PREFIXES:
                prefix = True
            elif (
                self.lexicon.is_common(lower) and (strict or style is not NoteStyle.MIXED or end > start) and not prefix
            ) or (strict and not prefix and not self.lexicon.is_unknown(lower)):
                break
            else:
                prefix = False
            end = word.end
            position = end
            while position < len(text) and text[position] in " \t" and position - end < 1:
                position += 1
        return end
