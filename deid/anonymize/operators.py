"""Turn detected spans into replacements: keyed surrogates, shifted dates, or tags.

The operator chosen for each span is recorded (never the text) so the audit ledger can say what
was done where. Scopes decide consistency: names, places and date offsets are per patient (or
corpus-wide when configured). Names do not depend on whether the detector called a span a
patient or a clinician, so one person mentioned twice never gets two fakes. Identifiers and
facility names are corpus-wide: they are unique codes, and references between records (a
FHIR conditional reference to a practitioner's NPI) must keep matching.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from deid.anonymize.date_shift import is_fhir_date, shift_dates_in, shift_fhir_date
from deid.anonymize.surrogates import SurrogateFactory
from deid.config import AnonymizationMode, DeidConfig
from deid.detection.entities import DEFAULT_TAG, REDACTION_TAGS, Entity
from deid.detection.spans import DetectedSpan

CORPUS_SCOPE = "*"

_PER_PATIENT = frozenset(
    {Entity.PATIENT.value, Entity.CLINICIAN.value, Entity.LOCATION.value, Entity.DATE.value, Entity.AGE_OVER_89.value}
)
_AGE_NUMBER = re.compile(r"\d{2,3}")


@dataclass(frozen=True, slots=True)
class AppliedSpan:
    """What was replaced and how: offsets into the original value, no text."""

    start: int
    end: int
    entity_type: str
    operator: str
    field: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The ledger form. Offsets are into one field's text (the whole note for text files);
        ``field`` (the structural path, e.g. ``content[0].attachment.data``) is left out until the
        ledger's payload policy accepts a path key."""
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "operator": self.operator}


def merge_overlaps(spans: Sequence[DetectedSpan]) -> list[DetectedSpan]:
    """Overlapping detections become one span (the union) typed by the longest member."""
    merged: list[DetectedSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if span.end <= span.start:
            continue
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            longest = last if last.end - last.start >= span.end - span.start else span
            merged[-1] = DetectedSpan(
                last.start, max(last.end, span.end), longest.entity_type, max(last.score, span.score)
            )
        else:
            merged.append(span)
    return merged


class Anonymizer:
    """Applies the configured mode; one per process, shared by every reader."""

    def __init__(self, config: DeidConfig, surrogates: SurrogateFactory) -> None:
        self._config = config
        self._surrogates = surrogates

    @property
    def surrogates(self) -> SurrogateFactory:
        return self._surrogates

    @property
    def redacting(self) -> bool:
        return self._config.mode is AnonymizationMode.redact

    def scope(self, entity_type: str, patient: str) -> str:
        if entity_type in _PER_PATIENT and not self._config.consistent_across_corpus:
            return patient
        return CORPUS_SCOPE

    def date_offset(self, patient: str) -> int:
        return self._surrogates.date_offset(patient)

    def surrogate(self, value: str, entity_type: str, patient: str) -> tuple[str, str]:
        """(replacement, operator) for one PHI value in surrogate mode."""
        scope = self.scope(entity_type, patient)
        factory = self._surrogates
        if entity_type in (Entity.PATIENT.value, Entity.CLINICIAN.value):
            return factory.name(value, scope), "surrogate"
        if entity_type == Entity.DATE.value:
            shifted = shift_dates_in(value, self.date_offset(patient))
            if shifted is None:
                return REDACTION_TAGS[entity_type], "redact"
            return factory.register(value, shifted), "shift"
        if entity_type == Entity.AGE_OVER_89.value:
            return self._age_cap(value), "age_cap"
        if entity_type == Entity.LOCATION.value:
            return factory.location(value, scope), "surrogate"
        if entity_type == Entity.HOSPITAL.value:
            return factory.hospital(value, scope), "surrogate"
        if entity_type == Entity.EMAIL.value:
            return factory.email(value, scope), "surrogate"
        if entity_type == Entity.URL.value:
            return factory.url(value, scope), "surrogate"
        if entity_type == Entity.IP_ADDRESS.value:
            return factory.ip_address(value, scope), "surrogate"
        return factory.identifier(value, scope), "format_preserve"

    def replace(self, value: str, entity_type: str, patient: str) -> tuple[str, str]:
        """(replacement, operator) honouring the mode: tags in redact mode, surrogates otherwise."""
        if self.redacting:
            if entity_type == Entity.AGE_OVER_89.value:
                return self._surrogates.register(value, "90+"), "age_cap"
            return REDACTION_TAGS.get(entity_type, DEFAULT_TAG), "redact"
        return self.surrogate(value, entity_type, patient)

    def _age_cap(self, value: str) -> str:
        capped = _AGE_NUMBER.sub("90+", value, count=1)
        self._surrogates.register(value, "90+")
        return self._surrogates.register(value, capped if capped != value else "90+")

    def structured_date(self, value: str, patient: str) -> str:
        """A typed date field: always shifted (a tag would break the record's schema)."""
        offset = self.date_offset(patient)
        if is_fhir_date(value):
            return self._surrogates.register(value, shift_fhir_date(value, offset))
        shifted = shift_dates_in(value, offset)
        return self._surrogates.register(value, shifted) if shifted is not None else value

    def text(
        self, text: str, spans: Sequence[DetectedSpan], patient: str, field: str | None = None
    ) -> tuple[str, list[AppliedSpan]]:
        """Free text with every detected span replaced; applied spans use the original offsets."""
        pieces: list[str] = []
        applied: list[AppliedSpan] = []
        cursor = 0
        for span in merge_overlaps(spans):
            replacement, operator = self.replace(text[span.start : span.end], span.entity_type, patient)
            pieces.append(text[cursor : span.start])
            pieces.append(replacement)
            applied.append(AppliedSpan(span.start, span.end, span.entity_type, operator, field))
            cursor = span.end
        pieces.append(text[cursor:])
        return "".join(pieces), applied
