"""Unlabelled unique codes: long digit runs and letter-digit codes ("A1234567", "4471-223-09").

Clinical values are short ("K 4.1", "HR 88", "WBC 12.3", "INR 1.2"); numbers with six or more
digits and no decimal point, and mixed codes with four or more digits, are identifiers.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

LONG_NUMBER = re.compile(r"(?<![\d.,/])\d{6,}(?![\d.,/]\d)")
CODE = re.compile(r"(?<![\w\-])(?=[A-Za-z0-9\-]*\d{4})(?=[A-Za-z0-9\-]*[A-Za-z])[A-Za-z][A-Za-z0-9\-]{5,}(?![\w\-])|"
                  r"(?<![\w\-])\d{2,}-\d{2,}-\d{2,}(?:-\d+)*(?![\w\-])")


class GenericIdRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.ID.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [
            self.result(match.start(), match.end(), Entity.ID.value, score)
            for pattern, score in ((LONG_NUMBER, 0.5), (CODE, 0.5))
            for match in pattern.finditer(text)
        ]
