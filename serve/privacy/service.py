"""Screening prompts for PHI before they reach the model.

Only entity types leave this module (for the ledger); the text itself is either passed through
or, when ``serve.redact_phi`` is on, rewritten with ``[TYPE]`` tags in place of each span.

Prompts are screened concurrently through the one detector: it holds no per-text state (its
recognizers are compiled patterns, spaCy's tokenizer keeps only a cache), and detection is linear
in its input (``deid.detection.guard``), so one clinician's long prompt no longer holds a lock
that every other request waits behind. A semaphore bounds how many screenings run at once, so
a burst cannot pile up unbounded work in the request threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from deid.config import DeidConfig
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


# Screenings in flight at once; more wait for a slot (each is short: detection is linear).
DEFAULT_CONCURRENCY = 8


class PromptPrivacy:
    def __init__(
        self, detector: SpanDetector | None, *, redact_prompts: bool, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.detector = detector
        self.redact_prompts = redact_prompts and detector is not None
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)

    def screen(self, texts: list[str]) -> Screened:
        """Blocking (NLP models run here): call it from a worker thread."""
        if self.detector is None:
            return Screened(texts, [])
        types: set[str] = set()
        result = []
        with self._slots:
            found = self.detector.detect_many(texts)
        for text, spans in zip(texts, found, strict=True):
            types.update(span.entity_type for span in spans)
            result.append(redact(text, spans) if self.redact_prompts and spans else text)
        return Screened(result, sorted(types))


def build_detector(config: DeidConfig) -> SpanDetector:
    """The de-identification engine's detector, configured like the rest of the appliance."""
    from deid.detection.engine import PhiDetector

    return PhiDetector(config)
