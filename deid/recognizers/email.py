"""E-mail addresses, by pattern alone.

Presidio's e-mail recognizer validates domains with ``tldextract``, which may try to download
the public-suffix list; this one needs no network and no suffix list.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

EMAIL = re.compile(r"(?<![\w.+\-])[\w.+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b")


class EmailRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.EMAIL.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [self.result(match.start(), match.end(), Entity.EMAIL.value, 0.95) for match in EMAIL.finditer(text)]
