"""Free text in, de-identified free text out: detection followed by anonymization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from deid.anonymize.operators import Anonymizer, AppliedSpan
from deid.detection.known_phi import KnownPhi
from deid.detection.spans import DetectedSpan


class Detector(Protocol):
    def detect(self, text: str, known_phi: Sequence[KnownPhi] = ()) -> list[DetectedSpan]: ...


class Scrubber:
    """Pairs one detector with one anonymizer so every reader scrubs text the same way."""

    def __init__(self, detector: Detector, anonymizer: Anonymizer) -> None:
        self._detector = detector
        self._anonymizer = anonymizer

    @property
    def anonymizer(self) -> Anonymizer:
        return self._anonymizer

    def scrub(
        self, text: str, patient: str, *, known_phi: Sequence[KnownPhi] = (), field: str | None = None
    ) -> tuple[str, list[AppliedSpan]]:
        if not text.strip():
            return text, []
        spans = self._detector.detect(text, known_phi=tuple(known_phi))
        return self._anonymizer.text(text, spans, patient, field)
