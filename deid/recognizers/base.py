"""What every clinical recognizer shares: Presidio's interface plus the note's casing style.

Notes come in three styles (mixed case, ALL CAPS, all lower case); capitalisation is evidence
for a name only in mixed-case text, so recognizers ask ``note_style`` before trusting it.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from enum import StrEnum

from deid.detection.presidio_api import AnalysisExplanation, EntityRecognizer, NlpArtifacts, RecognizerResult
from deid.recognizers.lexicon import Lexicon

UPPER_LETTER = re.compile(r"[A-Z]")
LOWER_LETTER = re.compile(r"[a-z]")


class NoteStyle(StrEnum):
    MIXED = "mixed"
    UPPER = "upper"
    LOWER = "lower"


def note_style(text: str) -> NoteStyle:
    """Classify by the share of upper-case letters; short or letterless text counts as mixed."""
    sample = text[:4000]
    upper = len(UPPER_LETTER.findall(sample))
    lower = len(LOWER_LETTER.findall(sample))
    if upper + lower < 20:
        return NoteStyle.MIXED
    share = upper / (upper + lower)
    if share > 0.7:
        return NoteStyle.UPPER
    if share < 0.015:
        return NoteStyle.LOWER
    return NoteStyle.MIXED


class ClinicalRecognizer(EntityRecognizer):
    """A Presidio recognizer that needs no NLP artefacts beyond the text itself."""

    ENTITIES: tuple[str, ...] = ()
    name: str  # set by Presidio's constructor in two branches mypy cannot join

    def __init__(self) -> None:
        super().__init__(supported_entities=list(self.ENTITIES), name=type(self).__name__, supported_language="en")

    def load(self) -> None:
        """Patterns are compiled at class creation; nothing to load lazily."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [
            result
            for result in self.find(text, note_style(text))
            if result.entity_type in entities or not entities
        ]

    @abstractmethod
    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        """All spans of this recognizer's entity types in ``text``."""

    def result(self, start: int, end: int, entity: str, score: float) -> RecognizerResult:
        explanation = AnalysisExplanation(recognizer=self.name, original_score=score)
        return RecognizerResult(
            entity_type=entity,
            start=start,
            end=end,
            score=score,
            analysis_explanation=explanation,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


class LexiconRecognizer(ClinicalRecognizer):
    """A recognizer that judges words against the shared word lists, built once per detector."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        super().__init__()
