"""Presidio's context step, handed back to the recognizers.

Presidio's default ``LemmaContextAwareEnhancer`` boosts scores when context words occur near a
match, using lemmas the trimmed pipeline does not compute, and deep-copies every result to do
it. The clinical recognizers weigh their own context (titles, relations, labels) while matching,
so this enhancer returns the results unchanged.
"""

from __future__ import annotations

from deid.detection.presidio_api import ContextAwareEnhancer, EntityRecognizer, NlpArtifacts, RecognizerResult


class RecognizerOwnContext(ContextAwareEnhancer):
    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0.0,
            min_score_with_context_similarity=0.0,
            context_prefix_count=0,
            context_suffix_count=0,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        return raw_results
