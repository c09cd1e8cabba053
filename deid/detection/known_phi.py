"""PHI the caller already knows about a patient (from structured fields such as FHIR Patient)."""

from __future__ import annotations

from dataclasses import dataclass

from deid.detection.entities import Entity


@dataclass(frozen=True, slots=True)
class KnownPhi:
    """A value known to identify the patient whose notes are scanned.

    The FHIR reader passes the patient's names, identifiers, telecom, address lines and dates so
    that they are found in that patient's notes even where no pattern or word list would catch
    them (an unusual surname, a bare MRN without a header).
    """

    text: str
    entity_type: str = Entity.PATIENT.value
