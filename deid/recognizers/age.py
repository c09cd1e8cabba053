"""Ages over 89 (Safe Harbor aggregates them into "90 or older"): "92 yo", "age 95", "91M", "pt is 93"."""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

OLD = r"(?:9\d|1[01]\d)"
AGE_AFTER = re.compile(
    rf"(?<![\d.])(?P<age>{OLD})(?:[ \t\-]*(?:yo|y/o|y\.o\.?|yr?s?\.?[ \t\-]*old|years?[ \t\-]*old|year-old|yrs?|"
    rf"years?(?=[ \t]+(?:of age|male|female|man|woman|gentleman|lady|m\b|f\b))|"
    rf"-?[mf](?=\b|[ \t]))|(?:[ \t]*(?:yo|y/o)?[ \t]*(?:male|female|man|woman|gentleman|lady|gent|m|f)\b(?![\-/])))",
    re.IGNORECASE,
)
AGE_BEFORE = re.compile(rf"\b(?:age|aged|age:)[ \t:]*(?P<age>{OLD})(?![\d.%])", re.IGNORECASE)
# "Pt is 91, DNR", "she turned 90 last week": a bare number said of the patient is an age, unless
# a unit or a reading follows ("pt is 95% on RA", "pt was 92 on 2L").
AGE_OF_SUBJECT = re.compile(
    rf"\b(?:pt|patient|he|she)[ \t]+(?:is|was|turned|turns|now)[ \t]+(?:an?[ \t]+)?(?P<age>{OLD})"
    r"(?![\d.%/]|[ \t]*(?:%|percent|on\b|sat|mg|mcg|kg|kgs|lb|lbs|bpm|mm|cc|ml|l\b|ra\b|o2|degrees|f\b|/))",
    re.IGNORECASE,
)


class AgeOver89Recognizer(ClinicalRecognizer):
    ENTITIES = (Entity.AGE_OVER_89.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [
            self.result(*match.span("age"), Entity.AGE_OVER_89.value, 0.85)
            for pattern in (AGE_AFTER, AGE_BEFORE, AGE_OF_SUBJECT)
            for match in pattern.finditer(text)
        ]
