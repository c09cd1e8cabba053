"""Vehicle identification numbers: 17 characters of a VIN's alphabet (no I, O or Q), letters and digits mixed."""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

VIN = re.compile(r"(?<![A-Za-z0-9])(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])[A-HJ-NPR-Z0-9]{17}(?![A-Za-z0-9])", re.IGNORECASE)


class VehicleRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.VEHICLE.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        return [self.result(m.start(), m.end(), Entity.VEHICLE.value, 0.8) for m in VIN.finditer(text)]
