"""Telephone, fax and pager numbers, including the 4-5 digit pagers and extensions of hospitals.

Presidio's phone recognizer relies on libphonenumber and misses pager numbers and bare
extensions; vital signs ("BP 120/80", "HR 88") have no phone shape and are never matched.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

# Groups joined by blanks, dashes, dots or slashes ("617/555/0134"). A dash before the area code
# is a list mark after a name ("DAUGHTER-ANN---617 555 0134"), not part of a longer number.
FULL_NUMBER = re.compile(
    r"(?<![\d/.])(?<!\d-)(?:\+?1[ \-.]?)?(?:\(\d{3}\)[ \t]*|\d{3}[ \-./])\d{3}[ \-./]\d{4}(?![\d\-/])"
    r"(?:[ \t]*(?:x|ext\.?|extension)[ \t]*\d{1,5})?",
    re.IGNORECASE,
)
LOCAL_NUMBER = re.compile(r"(?<![\d\-/.:])\d{3}-\d{4}(?![\d\-/])")
LABELLED_SHORT = re.compile(
    r"(?<![A-Za-z])(?:pager|pgr|beeper|beep|page|paged|pg|pager\s*#|ext|extension|x|cell|tel|phone|call|callback|"
    r"call back|contact|fax|ph)\.?[ \t]*(?:#|no\.?|number|num|@|at)?[ \t]*[:#]?[ \t]*(?P<number>\d{4,6}|\d-\d{4})(?![\d/%]|\.\d)",
    re.IGNORECASE,
)
# "page NP at #5432", "paged covering MD #4471": a numbered pager a few words after the verb. Only
# with "#", since "paged Dr. Ng at 1400" gives a clock time.
PAGER_AFTER_WORDS = re.compile(
    r"\b(?:page|paged|paging|pager|beeper|pgr)\b[^.\n;#]{1,30}?#[ \t]*(?P<number>\d{4,6})(?![\d/%]|\.\d)", re.IGNORECASE
)
# International and free-form numbers: "+44 20 7946 0958", or any 7-15 digit run in groups after a label.
PLUS_NUMBER = re.compile(r"(?<![\w+])\+\d[\d \-.()]{6,18}\d(?![\d\-])")
LABELLED_ANY = re.compile(
    r"(?:phone|tel|telephone|cell|mobile|fax|call|contact|pager|messages to|"
    r"(?:call|reach|text|page|contact)(?:ed)?[ \t]+(?:me|him|her|them|us|pt|patient|family)[ \t]+(?:at|on)|"
    r"(?:reached|reachable|answering|available)[ \t]+(?:at|on))\.?[ \t]*(?:#|no\.?|number)?[ \t]*[:#]?[ \t]*"
    r"(?P<number>\(?\+?\d[\d \-.()]{5,18}\d)(?![\d/%])",
    re.IGNORECASE,
)
LABEL_BEFORE = re.compile(r"(fax|facsimile|pager|pgr|beeper|phone|tel|cell|call|ph|contact)", re.IGNORECASE)


class PhoneRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.PHONE.value, Entity.FAX.value)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for pattern, score in ((FULL_NUMBER, 0.9), (LOCAL_NUMBER, 0.6)):
            for match in pattern.finditer(text):
                results.append(self.result(match.start(), match.end(), self._kind(text, match.start()), score))
        for match in PLUS_NUMBER.finditer(text):
            results.append(self.result(match.start(), match.end(), self._kind(text, match.start()), 0.8))
        for match in LABELLED_ANY.finditer(text):
            start, end = match.span("number")
            if 7 <= sum(char.isdigit() for char in match.group("number")) <= 15:
                results.append(self.result(start, end, self._kind(text, start), 0.8))
        for match in PAGER_AFTER_WORDS.finditer(text):
            results.append(self.result(*match.span("number"), Entity.PHONE.value, 0.75))
        for match in LABELLED_SHORT.finditer(text):
            start, end = match.span("number")
            results.append(self.result(start, end, self._kind(text, start), 0.75))
        return results

    @staticmethod
    def _kind(text: str, start: int) -> str:
        labels = LABEL_BEFORE.findall(text[max(0, start - 20) : start])
        return Entity.FAX.value if labels and labels[-1].lower() in ("fax", "facsimile") else Entity.PHONE.value
