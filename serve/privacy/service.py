"""Screening prompts for PHI before they reach the model.

Only entity types leave this module (for the ledger); the text itself is either passed through
or, when ``serve.redact_phi`` is on, rewritten with ``[TYPE]`` tags in place of each span.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from deid.detection.spans import DetectedSpan


class SpanDetector(Protocol):
    def detect_many(self, texts: list[str]) -> list[list[DetectedSpan]]: ...


@dataclass(frozen=True)
class Screened:
    texts: list[str]
    phi_types: list[str]


def redact(text: str, spans: Sequence[DetectedSpan]) -> str:
    """Replace each span (overlaps merged, the longest type kept) with a ``[TYPE]`` tag."""
    merged: list[DetectedSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = DetectedSpan(last.start, max(last.end, span.end), last.entity_type, last.score)
            continue
        merged.append(span)
    out = []
    cursor = 0
    for span in merged:
        out.append(text[cursor : span.start])
        out.append(f"[{span.entity_type}]")
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out)


class PromptPrivacy:
    def __init__(self, detector: SpanDetector | None, *, redact_prompts: bool) -> None:
        self.detector = detector
        self.redact_prompts = redact_prompts and detector is not None
        self._lock = threading.Lock()  # one NLP pipeline, shared by request threads

    def screen(self, texts: list[str]) -> Screened:
        """Blocking (NLP models run here): call it from a worker thread."""
        if self.detector is None:
            return Screened(texts, [])
        types: set[str] = set()
        result = []
        with self._lock:
            found = self.detector.detect_many(texts)
        for text, spans in zip(texts, found, strict=True):
            types.update(span.entity_type for span in spans)
            result.append(redact(text, spans) if self.redact_prompts and spans else text)
        return Screened(result, sorted(types))


def build_detector(settings: object) -> SpanDetector:
    """The de-identification engine's detector, configured like the rest of the appliance."""
    from deid.detection.engine import PhiDetector

    return PhiDetector(settings.deid)  # type: ignore[attr-defined]
