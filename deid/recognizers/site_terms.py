"""The hospital's own names (see :mod:`deid.site_terms_file`), found wherever they occur.

Each term is found as a whole phrase, in any letter case and with any spacing between its
words; longer terms are tried first so "MGH Ellison 4" is not cut at "MGH".
"""

from __future__ import annotations

import re

from deid.detection.entities import ALL_ENTITIES
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle
from deid.site_terms_file import SiteTerms


class SiteTermsRecognizer(ClinicalRecognizer):
    ENTITIES = ALL_ENTITIES

    def __init__(self, terms: SiteTerms) -> None:
        super().__init__()
        self.patterns = [
            (re.compile(r"(?<!\w)" + r"[ \t]+".join(re.escape(word) for word in term.split()) + r"(?!\w)", re.IGNORECASE), entity)
            for entity, values in terms.items()
            for term in sorted(set(values), key=len, reverse=True)
        ]

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [
            self.result(match.start(), match.end(), entity, 0.95)
            for pattern, entity in self.patterns
            for match in pattern.finditer(text)
        ]
