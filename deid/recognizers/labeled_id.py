"""Identifiers announced by a label: "MRN: 0048213", "Acct # 99-1234", "Medicaid ID ...".

The label decides the HIPAA class (medical record, account, health plan, licence, device,
vehicle, other); the value must contain digits, so "MRN: unknown" is left alone.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

LABELS: tuple[tuple[str, Entity], ...] = (
    (r"mrn|mr\s*#|mr\s*no|med(?:ical)?\s*rec(?:ord)?s?(?:\s*(?:no|number|#))?|unit\s*(?:no|number|#)|hosp(?:ital)?\s*(?:no|number|#)|"
     r"chart\s*(?:no|number|#)|record\s*(?:no|number|#)|patient\s*(?:id|no|number|#)|pt\s*(?:id|#)", Entity.MRN),
    (r"acc(?:oun)?t|acct|billing\s*(?:no|number|#)|invoice|fin|encounter\s*(?:no|number|#|id)|visit\s*(?:no|number|#|id)", Entity.ACCOUNT),
    (r"member\s*(?:id|no|number|#)|policy(?:\s*(?:no|number|#|id))?|insurance\s*(?:id|no|number|#)|medicaid(?:\s*(?:id|no|number|#))?|"
     r"medicare(?:\s*(?:id|no|number|#))?|subscriber\s*(?:id|no|number|#)|group\s*(?:no|number|#)|plan\s*(?:id|no|number|#)|"
     r"beneficiary\s*(?:id|no|number|#)|hicn?|mbi", Entity.HEALTH_PLAN),
    (r"licen[cs]e(?:\s*(?:no|number|#))?|lic\s*#|dea(?:\s*(?:no|number|#))?|npi|certificate(?:\s*(?:no|number|#))?|cert\s*#|"
     r"upin|state\s*id", Entity.LICENSE),
    (r"serial(?:\s*(?:no|number|#))?|s/n|sn|device\s*(?:id|no|number|#)|model\s*(?:no|number|#)|udi|implant\s*(?:id|#)|lot\s*(?:no|number|#)",
     Entity.DEVICE),
    (r"vin|license\s*plate|plate(?:\s*(?:no|number|#))?|tag\s*#", Entity.VEHICLE),
    (r"id|identifier|case\s*(?:no|number|#)|specimen\s*(?:no|number|#|id)|accession(?:\s*(?:no|number|#))?|order\s*(?:no|number|#)|"
     r"ref(?:erence)?\s*(?:no|number|#)|claim\s*(?:no|number|#)|badge|employee\s*(?:id|no|#)", Entity.ID),
)
VALUE = r"\.?[ \t]*(?:no\.?|number|num|#)?[ \t]*[:#=]?[ \t]*(?P<value>[A-Za-z]{0,4}[\-]?\d[A-Za-z0-9\-/]{2,24})"
PATTERNS: tuple[tuple[re.Pattern[str], Entity], ...] = tuple(
    (re.compile(rf"(?<![A-Za-z])(?:{label}){VALUE}", re.IGNORECASE), entity) for label, entity in LABELS
)


class LabeledIdRecognizer(ClinicalRecognizer):
    ENTITIES = tuple(entity.value for _, entity in LABELS)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for pattern, entity in PATTERNS:
            for match in pattern.finditer(text):
                start = match.start("value")
                value = match.group("value").rstrip("-/")
                if sum(char.isdigit() for char in value) < 2:
                    continue
                # A specific label ("Medicaid ID") outranks the generic "ID" on the same value.
                score = 0.8 if entity is Entity.ID else 0.9
                results.append(self.result(start, start + len(value), entity.value, score))
        return results
