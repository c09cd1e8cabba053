"""Names announced by a title, role, relation or header: "Dr Smith", "wife Mary", "Name: ...".

Context is the strongest evidence for a name in clinical text, and it tells staff from family:
"Dr", "RN", "NP", "attending", "paged" precede clinicians; "Mr", "wife", "son", "pt" precede the
patient and relatives. Names followed by a credential ("Smith, MD", "K. Lee RN") are clinicians.
"""

from __future__ import annotations

import re

from presidio_analyzer import RecognizerResult

from deid.detection.entities import Entity
from deid.recognizers.base import ClinicalRecognizer, NoteStyle
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.name_words import TOKEN, Word, extend_name, looks_like_name

CLINICIAN_TRIGGERS = (
    r"dr|drs|doctor|prof|professor|rn|np|pa|pa-c|md|crna|cna|lpn|rrt|rt|ot|slp|pharmd|nurse|attending|"
    r"resident|intern|fellow|surgeon|cardiologist|neurologist|oncologist|nephrologist|intensivist|"
    r"hospitalist|pcp|physician|provider|np|paged|page|seen by|evaluated by|examined by|per|d/w|dw|"
    r"discussed with|spoke with|spoke to|talked with|called|notified|aware|signed by|signed|cosigned by|"
    r"dictated by|transcribed by|electronically signed by|cc|attending physician|referring physician|"
    r"primary care|covering|coverage|charge nurse|case manager|social worker|sw|cm|chaplain|dietitian|"
    r"by|with|to"
)
PERSON_TRIGGERS = (
    r"mr|mrs|ms|miss|mister|mstr|wife|husband|spouse|son|sons|daughter|daughters|mother|father|mom|dad|"
    r"sister|brother|sibling|siblings|friend|niece|nephew|grandson|granddaughter|grandmother|grandfather|"
    r"grandma|grandpa|aunt|uncle|cousin|partner|boyfriend|girlfriend|fiance|fiancee|hcp|proxy|"
    r"health care proxy|guardian|neighbor|neighbour|caregiver|visitor|pt|patient|name|patient name|pt name|"
    r"family|stepson|stepdaughter|son-in-law|daughter-in-law|dtr|sis|bro|gf|bf"
)
# Triggers that are ordinary words ("by", "with", "to", "per", "called", "aware") only count
# when a name-list word or a capitalised word follows; titles accept any plausible word.
WEAK_TRIGGERS = frozenset(
    "by with to per called notified aware signed page paged cc covering coverage pt patient name family "
    "sw cm rt ot pa md provider physician nurse".split()
)
TRIGGER = re.compile(
    rf"(?<![A-Za-z])(?P<clin>{CLINICIAN_TRIGGERS})|(?<![A-Za-z])(?P<pers>{PERSON_TRIGGERS})", re.IGNORECASE
)
AFTER_TRIGGER = re.compile(r"(?:\.|'s)?(?:[ \t]*[:#,\-][ \t]*|[ \t]+)(?:(?:is|named|was|of|name)[ \t]+)?")
CREDENTIAL = re.compile(
    r"(?:,[ \t]*|[ \t]+)(?:md|m\.d\.|do|rn|r\.n\.|np|pa-c|pa|crna|lpn|bsn|msn|rrt|pharmd|phd|dds|fnp|aprn|cnm)"
    r"(?![A-Za-z])",
    re.IGNORECASE,
)


class TitledNameRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.CLINICIAN.value, Entity.PATIENT.value)

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        super().__init__()

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for trigger in TRIGGER.finditer(text):
            gap = AFTER_TRIGGER.match(text, trigger.end())
            if gap is None or "\n" in gap.group():
                continue
            match = TOKEN.match(text, gap.end())
            if match is None:
                continue
            word = Word(match.start(), match.end(), match.group())
            trigger_word = trigger.group().lower()
            if not self._accepts(trigger_word, word, style):
                continue
            start, end = extend_name(text, word, self.lexicon, style)
            if word.is_initial and end == word.end:
                continue
            entity = Entity.CLINICIAN if trigger.group("clin") else Entity.PATIENT
            results.append(self.result(start, end, entity.value, 0.85 if trigger_word not in WEAK_TRIGGERS else 0.6))
        results.extend(self._before_credentials(text, style))
        return results

    def _accepts(self, trigger_word: str, word: Word, style: NoteStyle) -> bool:
        if not looks_like_name(word, self.lexicon, style):
            return False
        if word.is_initial:
            return True  # kept only if a name follows the initial ("RN K. LINDQVIST")
        if trigger_word in WEAK_TRIGGERS or len(trigger_word) <= 2:
            name_listed = self.lexicon.is_name(word.lower) and word.lower not in self.lexicon.common_words
            capital = style is NoteStyle.MIXED and word.text[0].isupper()
            return name_listed or (capital and not word.is_initial)
        return True

    def _before_credentials(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for credential in CREDENTIAL.finditer(text):
            end = credential.start()
            start = None
            position = end
            for _ in range(3):
                match = _last_token_before(text, position)
                if match is None:
                    break
                word = Word(match.start(), match.end(), match.group())
                if not looks_like_name(word, self.lexicon, style) or (
                    style is not NoteStyle.MIXED and not self.lexicon.is_name(word.lower) and not word.is_initial
                    and start is None
                ):
                    break
                start = word.start
                position = word.start
            if start is not None and not (end - start <= 2):
                results.append(self.result(start, end, Entity.CLINICIAN.value, 0.8))
        return results


PRECEDING_TOKEN = re.compile(r"([A-Za-z][A-Za-z'\-]*\.?)[ \t,]{0,3}$")


def _last_token_before(text: str, position: int) -> re.Match[str] | None:
    window_start = max(0, position - 40)
    match = PRECEDING_TOKEN.search(text, window_start, position)
    if match is None:
        return None
    return TOKEN.match(text, match.start(1))
