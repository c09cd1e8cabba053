"""Towns, cities, counties and countries found by the GeoNames gazetteer, with or without a cue.

Notes name places bare ("dtr driving up from worcester", "BOSTON EMS"), so the word list is the
evidence. Many towns share their name with an ordinary word ("Bath", "Mobile", "Normal",
"Plant City"): such a place counts only after a preposition ("moved from Mobile") or before a
service ("orange city ems"), and only when capitalised in well-cased text; in ALL-CAPS or
lower-case notes a one-word one is left to the residence cues of ``LocationRecognizer``
("lives in bath"). Listed places that are no ordinary word count
anywhere, but in well-cased text only when capitalised.

Towns the list lacks are guessed from form and context: a word that is no English, clinical or
name word and ends like an English place name ("Brendaton", "Downsborough", "Kellyhaven"), or
such an unknown word after "from", "in", "near" or before "EMS"/"fire"/"police" in a note
without case.
"""

from __future__ import annotations

import re
import unicodedata

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.clinical_terms import DESCRIPTIVE_NAMES, DRUG_ENDINGS
from deid.recognizers.name_words import Word, words

MAX_WORDS = 4
MIN_BARE_LENGTH = 4
# Blanks, or an abbreviation's dot ("St. Louis"), may join the words of one place name.
JOINER = re.compile(r"\.?[ \t]")
CUE_BEFORE = re.compile(r"(?:\b(?:in|from|to|near|at|of|outside|around)[ \t]+)$", re.IGNORECASE)
MINOR_WORDS = frozenset("de del la le los las of on upon the du da di van von el sur am an der".split())
PLACE_ENDINGS = (
    "ville", "ton", "town", "burg", "burgh", "borough", "boro", "bury", "ford", "field", "port", "mouth", "land",
    "stad", "chester", "shire", "haven", "view", "side", "furt", "berg", "wood", "dale", "ham", "stead", "fort",
    "mont", "polis", "view", "bridge", "brook", "creek", "falls", "heim", "ia",
)
PREFIX_BEFORE = re.compile(
    r"(?:\b(?:new|north|south|east|west|lake|port|mount|mt|fort|saint|st|san|santa|el|la|los|las)\.?[ \t]+)$",
    re.IGNORECASE,
)
UNKNOWN_CUE_BEFORE = re.compile(
    r"(?:\b(?:from|in|near|outside|around)[ \t]+)(?:(?:new|north|south|east|west|lake|port|mount|mt|fort|saint|st|"
    r"san|santa)\.?[ \t]+)?$",
    re.IGNORECASE,
)
# A postal code right after a place belongs to the address ("Uruguay 64677", "Boston 02114").
# Years and doses are not postal codes ("Boston 2015", "Boston 2000 mg").
POSTAL_CODE_AFTER = re.compile(
    r",?[ \t]+(?!(?:19|20)\d\d\b)\d{4,6}(?:-\d{4})?\b(?![.:/\-]?\d)(?![ \t]*(?:mg|mcg|ml|cc|units?|kg|g|l|mmhg)\b)",
    re.IGNORECASE,
)
SERVICE_AFTER = re.compile(r"[ \t]+(?:ems|fire|fd|police|pd|ambulance|sheriff)\b", re.IGNORECASE)
NOT_ALONE = frozenset("north south east west central lower upper new old saint st mount mt fort port lake".split())


def fold(text: str) -> str:
    """The gazetteer's spelling: lower-case ASCII without dots."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower().rstrip(".")


class PlaceNameRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.LOCATION.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        if not self.lexicon.places:
            return []
        tokens = list(words(text))
        results = []
        index = 0
        while index < len(tokens):
            length = self._longest_place(text, tokens, index, style)
            if length:
                first, last = tokens[index], tokens[index + length - 1]
                # A multi-word place outranks a name guess on one of its words ("St. Louis").
                score = 0.7 if length > 1 else 0.55
                postal = POSTAL_CODE_AFTER.match(text, last.end)
                end = postal.end() if postal else last.end
                results.append(self.result(first.start, end, Entity.LOCATION.value, score))
                index += length
            else:
                guess = self._guessed_town(text, tokens[index], style)
                if guess is not None:
                    results.append(self.result(*guess, Entity.LOCATION.value, 0.45))
                index += 1
        return results

    def _guessed_town(self, text: str, word: Word, style: NoteStyle) -> tuple[int, int] | None:
        """A town the gazetteer lacks, from its form or its context (see the module docstring)."""
        lower = word.lower
        if len(lower) < 4 or not self.lexicon.is_unknown(lower) or self.lexicon.is_name(lower):
            return None
        if style is NoteStyle.MIXED and not (word.text[0].isupper() and not word.text.isupper()):
            return None
        shaped = lower.endswith(PLACE_ENDINGS) and len(lower) >= 7
        cued = style is not NoteStyle.MIXED and not lower.endswith(DRUG_ENDINGS) and (
            UNKNOWN_CUE_BEFORE.search(text, max(0, word.start - 20), word.start) is not None
            or SERVICE_AFTER.match(text, word.end) is not None
        )
        if not (shaped or cued):
            return None
        prefix = PREFIX_BEFORE.search(text, max(0, word.start - 8), word.start)
        return (prefix.start() if prefix else word.start), word.end

    def _longest_place(self, text: str, tokens: list[Word], index: int, style: NoteStyle) -> int:
        """How many words from ``index`` on form an acceptable place name (0 if none)."""
        parts: list[str] = []
        candidates = []
        for offset in range(MAX_WORDS):
            position = index + offset
            if position >= len(tokens):
                break
            if offset and not JOINER.fullmatch(text, tokens[position - 1].end, tokens[position].start):
                break
            parts.append(fold(tokens[position].text))
            if " ".join(parts) in self.lexicon.places:
                candidates.append(offset + 1)
        for length in reversed(candidates):
            if self._acceptable(text, tokens[index : index + length], style):
                return length
        return 0

    def _acceptable(self, text: str, place: list[Word], style: NoteStyle) -> bool:
        lowers = [word.lower for word in place]
        content = [lower for lower in lowers if lower not in MINOR_WORDS]
        if not content or all(lower in NOT_ALONE for lower in content):
            return False
        if any(lower in self.lexicon.clinical_terms for lower in content):
            return False
        if style is NoteStyle.MIXED and not all(
            word.text[0].isupper() for word in place if word.lower not in MINOR_WORDS
        ):
            return False
        if style is NoteStyle.MIXED and len(place) == 1 and place[0].text.isupper() and len(place[0].text) <= 4:
            return False  # acronyms in well-cased text ("ICU", "RAMS")
        name = " ".join(fold(word.text) for word in place)
        ordinary = name in self.lexicon.common_places or all(lower in self.lexicon.stop_words for lower in content)
        if len(place) == 1 and (len(lowers[0]) < MIN_BARE_LENGTH or lowers[0] in DESCRIPTIVE_NAMES):
            ordinary = True  # "pupils pearl" names no town
        if not ordinary or SERVICE_AFTER.match(text, place[-1].end):
            return True
        cued = CUE_BEFORE.search(text, max(0, place[0].start - 12), place[0].start) is not None
        # Without case, only a multi-word place ("blue ash", "university heights") is rare enough as a phrase.
        return cued and (style is NoteStyle.MIXED or len(place) > 1)
