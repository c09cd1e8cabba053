"""Web addresses: with a scheme, with "www.", or a host under a common web top-level domain.

Presidio's URL recognizer accepts any word.tld, so "edema.pl" or "pt.is" become URLs; here a
bare host needs a common web suffix (.com, .org, .edu, ...) and at least three letters before it.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

WITH_SCHEME = re.compile(r"\b(?:https?|ftp)://[^\s<>\"')\]]+", re.IGNORECASE)
WITH_WWW = re.compile(r"\bwww\.[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?:/[^\s<>\"')\]]*)?", re.IGNORECASE)
BARE_HOST = re.compile(
    r"(?<![@\w.\-])[A-Za-z0-9\-]{3,}(?:\.[A-Za-z0-9\-]+)*\.(?:com|org|net|edu|gov|mil|info|biz|io|health|care)"
    r"(?:/[^\s<>\"')\]]*)?\b",
    re.IGNORECASE,
)


class UrlRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.URL.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [
            self.result(match.start(), match.end(), Entity.URL.value, score)
            for pattern, score in ((WITH_SCHEME, 0.95), (WITH_WWW, 0.9), (BARE_HOST, 0.7))
            for match in pattern.finditer(text)
        ]
