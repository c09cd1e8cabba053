"""Optional: spaCy's statistical PERSON / place entities, filtered for clinical shorthand.

Only used with ``DeidConfig.use_spacy_ner``. The small English model is trained on news, so
its hits are kept only when they contain no clinical term ("Foley", "Lasix", "CV") and
mixed-case text makes its capitalisation cues meaningful.
"""

from __future__ import annotations

from deid.detection.entities import Entity
from deid.detection.presidio_api import NlpArtifacts, RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle, note_style

LABELS = {"PERSON": Entity.PATIENT, "GPE": Entity.LOCATION, "LOC": Entity.LOCATION, "FAC": Entity.LOCATION}


class SpacyNerRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.PATIENT.value, Entity.LOCATION.value)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or note_style(text) is not NoteStyle.MIXED:
            return []
        results = []
        for span in nlp_artifacts.entities:
            entity = LABELS.get(span.label_)
            if entity is None:
                continue
            words = [token.lower_ for token in span if token.is_alpha]
            if not words or any(word in self.lexicon.clinical_terms for word in words):
                continue
            if all(word in self.lexicon.common_words for word in words):
                continue
            results.append(self.result(span.start_char, span.end_char, entity.value, 0.5))
        return results

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        """Unused: this recognizer reads spaCy's entities in ``analyze``."""
        return []
