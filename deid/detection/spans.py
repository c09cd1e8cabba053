"""The span type every part of the appliance agrees on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectedSpan:
    """A PHI span: character offsets into the text, never the text itself."""

    start: int
    end: int
    entity_type: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "score": round(self.score, 4)}
