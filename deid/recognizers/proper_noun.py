"""Capitalised words inside a sentence that no word list knows: in a mixed-case note, a name.

Name lists end somewhere, and the surnames past their end ("Oyelaran", "Kaczmarek-Olt") are the
ones most likely to identify someone. In mixed-case prose a capitalised word in mid-sentence is
a proper noun; if it is no English word, clinical term, drug name or eponym, the likeliest
proper noun in a clinical note is a person or a place, and both are PHI. Sentence starts,
headers and ALL-CAPS or all-lower notes give capitals no meaning, so they are left to the
other recognizers. The score is low: any stronger recognizer's type wins in a merge.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.clinical_terms import DRUG_ENDINGS
from deid.recognizers.dictionary_name import EPONYM_USE
from deid.recognizers.name_words import words

# Capital then lower case, in any script, parts joined by an apostrophe or hyphen: "Oyelaran",
# "O'Dwyer", "Kaczmarek-Olt", "Oddgeirsdóttir".
PROPER_SHAPE = re.compile(r"[^\W\d_a-z](?:[^\W\d_A-Z]){2,}(?:['\-][^\W\d_]?[^\W\d_A-Z]+)*|[^\W\d_a-z]'[^\W\d_a-z][^\W\d_A-Z]{2,}")
# What may stand before a mid-sentence word: anything but the end of a sentence, a header or a list mark.
SENTENCE_START = re.compile(r"(?:^|[.!?:;•*>#|\n]|\d[.)]|--?)[ \t\"'(\[]*$")
LOOK_BACK = 12
# A grade after the word makes it a scale, not a person: "Mallampati II", "Forrest IIb".
GRADE_AFTER = re.compile(r"[ \t]+(?:I{1,3}|IV|V)[ab]?\b")


class UnknownProperNounRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.PATIENT.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        if style is not NoteStyle.MIXED:
            return []
        results = []
        for word in words(text):
            if not PROPER_SHAPE.fullmatch(word.text) or SENTENCE_START.search(text[max(0, word.start - LOOK_BACK) : word.start]):
                continue
            lower = word.lower
            parts = re.split(r"['\-]", lower)
            if not all(self.lexicon.is_unknown(part) or len(part) < 3 for part in parts) or lower.endswith(DRUG_ENDINGS):
                continue
            if EPONYM_USE.match(text, word.end) or GRADE_AFTER.match(text, word.end):
                continue  # "Kawasaki disease", "Swan-Ganz catheter", "Mallampati II"
            results.append(self.result(word.start, word.end, Entity.PATIENT.value, 0.4))
        return results
