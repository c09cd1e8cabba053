"""US social security numbers: 123-45-6789 always; nine bare digits only after an SSN label."""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

DASHED = re.compile(r"(?<![\d\-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d\-])")
LABELLED = re.compile(
    r"(?:ssn|ss#|soc(?:ial)?\.?\s*sec(?:urity)?(?:\s*(?:no|number|#))?)\.?[ \t]*[:#]?[ \t]*(?P<number>\d{9}|\d{3}[- ]\d{2}[- ]\d{4})\b",
    re.IGNORECASE,
)


class SsnRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.SSN.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = [self.result(m.start(), m.end(), Entity.SSN.value, 0.85) for m in DASHED.finditer(text)]
        results += [self.result(*m.span("number"), Entity.SSN.value, 0.95) for m in LABELLED.finditer(text)]
        return results
