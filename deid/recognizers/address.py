"""Street addresses, P.O. boxes, "City, ST" pairs and zip codes (geography below state level)."""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle

SUFFIX = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|ter|circle|cir|"
    r"parkway|pkwy|highway|hwy|square|sq|trail|trl|turnpike|tpke|row|alley|path|pike|plaza|loop|crescent"
)
STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|"
    r"OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|AS|GU|MP|PW|VI|FM|MH|AA|AE|AP"
)
STATE_NAMES = (
    r"alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|illinois|"
    r"indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|mississippi|missouri|"
    r"montana|nebraska|nevada|new hampshire|new jersey|new mexico|new york|north carolina|north dakota|ohio|oklahoma|"
    r"oregon|pennsylvania|rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|washington|"
    r"west virginia|wisconsin|wyoming"
)
STREET = re.compile(
    rf"(?<![\w/.])\d{{1,6}}[A-Za-z]?(?:[ \t]+[NSEW]\.?)?(?:[ \t]+[A-Za-z][A-Za-z'\-]*\.?){{1,4}}[ \t]+(?:{SUFFIX})\b\.?"
    rf"(?:,?[ \t]*(?:apt|apartment|suite|ste|unit|#|fl|floor)\.?[ \t]*#?[ \t]*[A-Za-z0-9\-]+)?",
    re.IGNORECASE,
)
STREET_WORD = re.compile(r"(?<=[ \t])[A-Za-z][A-Za-z'\-]*")
TITLE_AFTER = re.compile(r"\.?[ \t]*[A-Z][a-z]")
# An apartment or suite number identifies a home even when the street before it was missed.
UNIT_NUMBER = re.compile(r"\b(?:apt|apartment|suite|ste)\.?[ \t]*#?[ \t]*\d{1,5}[A-Za-z]?\b", re.IGNORECASE)
PO_BOX = re.compile(r"\bp\.?[ \t]*o\.?[ \t]*box[ \t]+\d+\b", re.IGNORECASE)
# US military and diplomatic mail: "PSC 1234, Box 5678 APO AE 09012", "Unit 4526 Box 0671 DPO AP".
MILITARY_MAIL = re.compile(
    r"\b(?:psc|unit|cmr)[ \t]+\d{1,5},?[ \t]+box[ \t]+\d{1,5}(?:[ \t]+[adf]po(?:[ \t]+a[aep])?(?:[ \t]+\d{5})?)?\b",
    re.IGNORECASE,
)
CITY_STATE_ZIP = re.compile(
    rf"(?<![A-Za-z'\-])(?P<city>(?:[A-Z][A-Za-z'\-]+[ \t]){{0,2}}[A-Z][A-Za-z'\-]+),?[ \t]+(?:{STATES}|{STATE_NAMES})\.?"
    rf"(?:[ \t]+(?P<zip>\d{{5}}(?:-\d{{4}})?))?\b(?![ \t]*\d)",
)
ZIP_LABELLED = re.compile(r"\b(?:zip|zipcode|zip code|postal code)[ \t:#]*(?P<zip>\d{5}(?:-\d{4})?)\b", re.IGNORECASE)
STATE_ZIP = re.compile(rf"\b(?:{STATES}|{STATE_NAMES})\.?,?[ \t]+(?P<zip>\d{{5}}(?:-\d{{4}})?)\b", re.IGNORECASE)


class AddressRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.LOCATION.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        location = Entity.LOCATION.value
        results = [self.result(m.start(), m.end(), location, 0.85) for m in STREET.finditer(text) if self._street(text, m)]
        results += [self.result(m.start(), m.end(), location, 0.9) for pattern in (PO_BOX, MILITARY_MAIL) for m in pattern.finditer(text)]
        results += [self.result(m.start(), m.end(), location, 0.8) for m in UNIT_NUMBER.finditer(text)]
        for match in CITY_STATE_ZIP.finditer(text):
            # The state alone is not PHI, but inside "City, ST 02114" it goes with the rest.
            city_words = [word.lower() for word in match.group("city").split()]
            if any(word in self.lexicon.clinical_terms or word in self.lexicon.stop_words for word in city_words):
                continue
            if match.group("zip"):
                results.append(self.result(match.start("city"), match.end(), location, 0.9))
            elif style is NoteStyle.MIXED:
                results.append(self.result(*match.span("city"), location, 0.7))
        results += [self.result(*m.span("zip"), location, 0.85) for m in ZIP_LABELLED.finditer(text)]
        # Inside an address the state goes with the zip code ("douglasshire, fl 48437").
        results += [self.result(*m.span(), location, 0.85) for m in STATE_ZIP.finditer(text)]
        return results

    def _street(self, text: str, match: re.Match[str]) -> bool:
        """Reject shorthand that happens to end in a suffix word: "to 4L NC per Dr. Sexton"."""
        words = STREET_WORD.findall(match.group())
        if any(word.lower() in self.lexicon.clinical_terms or word.lower() in self.lexicon.stop_words for word in words[:-1]):
            return False
        return not (words and words[-1].lower() == "dr" and TITLE_AFTER.match(text, match.end()))
