"""The patient's own PHI from structured data, found wherever it recurs in that patient's notes.

Names are matched word by word (case-insensitive, whole words), so "Haldane" alone or "PETER"
in an ALL-CAPS note is found; identifiers and other values are matched whole, ignoring case
and, for digit strings of five or more, blanks and dashes ("448812" also finds "448-812").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from deid.detection.entities import NAME_ENTITIES, Entity
from deid.detection.known_phi import KnownPhi
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle
from deid.recognizers.lexicon import Lexicon

# Name parts keep their digits: exported test data writes names like "Denis399".
NAME_PART = re.compile(r"[^\W_][\w'\-]*")
SEPARATOR = r"[ \-]?"


class KnownPhiRecognizer(ClinicalRecognizer):
    """Built per call (a Presidio ad-hoc recognizer) from the caller's list of known values."""

    ENTITIES = tuple(entity.value for entity in Entity)

    def __init__(self, known: Sequence[KnownPhi], lexicon: Lexicon) -> None:
        super().__init__()
        self.patterns = _patterns(known, lexicon)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [
            self.result(match.start(), match.end(), entity, 0.95)
            for pattern, entity in self.patterns
            for match in pattern.finditer(text)
        ]


def _patterns(known: Sequence[KnownPhi], lexicon: Lexicon) -> list[tuple[re.Pattern[str], str]]:
    patterns: list[tuple[re.Pattern[str], str]] = []
    for item in known:
        value = item.text.strip()
        if not value:
            continue
        if item.entity_type in NAME_ENTITIES:
            for part in NAME_PART.findall(value):
                if len(part) < 2 or part.lower() in lexicon.clinical_terms:
                    continue
                patterns.append((re.compile(rf"(?<!\w){re.escape(part)}(?!\w)", re.IGNORECASE), item.entity_type))
            continue
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 5 and len(digits) >= len(re.sub(r"\W", "", value)) - 3:
            body = SEPARATOR.join(re.escape(digit) for digit in digits)
            patterns.append((re.compile(rf"(?<!\d){body}(?!\d)"), item.entity_type))
        if len(value) >= 3:
            patterns.append((re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE), item.entity_type))
    return patterns
