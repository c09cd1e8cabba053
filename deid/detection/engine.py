"""``PhiDetector``: the one entry point every part of the appliance uses to find PHI.

It wraps a Presidio ``AnalyzerEngine`` whose registry holds only the clinical recognizers in
``deid.recognizers`` and whose spaCy pipeline is trimmed to the tokenizer, so it is both more
accurate and several times faster than stock Presidio on clinical notes. Build one per process
(about a second) and reuse it; it holds no per-text state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from deid.config import DeidConfig
from deid.detection.context import RecognizerOwnContext
from deid.detection.guard import compact, restore, tokenizer_text
from deid.detection.known_phi import KnownPhi
from deid.detection.merge import merge_results
from deid.detection.nlp import ClinicalSpacyEngine
from deid.detection.presidio_api import AnalyzerEngine, EntityRecognizer, NlpArtifacts, RecognizerResult
from deid.detection.spans import DetectedSpan
from deid.detection.token_filter import TokenFilter, TokenModel
from deid.recognizers.lexicon import Lexicon, load_lexicon
from deid.recognizers.recognizer_registry import build_registry
from deid.recognizers.recurring_phi import KnownPhiRecognizer
from deid.site_terms_file import load_site_terms

LANGUAGE = "en"
MAX_TEXT_CHARS = 20_000_000


class PhiDetector:
    def __init__(self, config: DeidConfig | None = None) -> None:
        self.config = config or DeidConfig()
        self.lexicon: Lexicon = load_lexicon()
        nlp_engine = ClinicalSpacyEngine(use_ner=self.config.use_spacy_ner)
        nlp_engine.load()
        nlp_engine.get_nlp(LANGUAGE).max_length = MAX_TEXT_CHARS
        self._nlp_engine = nlp_engine
        self._analyzer = AnalyzerEngine(
            registry=build_registry(
                self.lexicon,
                use_spacy_ner=self.config.use_spacy_ner,
                site_terms=load_site_terms(self.config.site_terms_file) if self.config.site_terms_file else None,
            ),
            nlp_engine=nlp_engine,
            supported_languages=[LANGUAGE],
            log_decision_process=False,
            context_aware_enhancer=RecognizerOwnContext(),
        )
        self.token_filter = TokenFilter(self.lexicon, TokenModel.load()) if self.config.token_filter else None

    def detect(self, text: str, known_phi: Sequence[KnownPhi] = ()) -> list[DetectedSpan]:
        """Sorted, non-overlapping PHI spans of ``text``; ``known_phi`` are this patient's own values."""
        view = compact(text)  # linear time whatever the text (deid.detection.guard)
        nlp_artifacts = self._nlp_engine.process_text(tokenizer_text(view.text), LANGUAGE)
        return restore(self._analyze(view.text, nlp_artifacts, known_phi), view)

    def detect_many(
        self, texts: Iterable[str], known_phi: Sequence[Sequence[KnownPhi]] | None = None
    ) -> list[list[DetectedSpan]]:
        """``detect`` over many texts, tokenized in batches; ``known_phi[i]`` belongs to ``texts[i]``."""
        texts = list(texts)
        if known_phi is not None and len(known_phi) != len(texts):
            raise ValueError("known_phi must give one sequence per text")
        views = [compact(text) for text in texts]  # linear time whatever the text (deid.detection.guard)
        tokenized = [tokenizer_text(view.text) for view in views]
        batch = self._nlp_engine.process_batch(tokenized, LANGUAGE, batch_size=self.config.detect_batch_size)
        artifacts = (produced[1] for produced in batch)  # (text, artifacts)
        return [
            restore(self._analyze(view.text, nlp_artifacts, known_phi[index] if known_phi is not None else ()), view)
            for index, (view, nlp_artifacts) in enumerate(zip(views, artifacts, strict=True))
        ]

    def candidates(self, text: str, known_phi: Sequence[KnownPhi] = ()) -> list[RecognizerResult]:
        """Every rule result, however weak: what the token filter decides on (and what it is fit on)."""
        return self._candidates(text, self._nlp_engine.process_text(text, LANGUAGE), known_phi)

    def _candidates(self, text: str, nlp_artifacts: NlpArtifacts, known_phi: Sequence[KnownPhi]) -> list[RecognizerResult]:
        ad_hoc: list[EntityRecognizer] | None = [KnownPhiRecognizer(known_phi, self.lexicon)] if known_phi else None
        return self._analyzer.analyze(
            text,
            LANGUAGE,
            nlp_artifacts=nlp_artifacts,
            ad_hoc_recognizers=ad_hoc,
            score_threshold=0.0,
        )

    def _analyze(self, text: str, nlp_artifacts: NlpArtifacts, known_phi: Sequence[KnownPhi]) -> list[DetectedSpan]:
        results = self._candidates(text, nlp_artifacts, known_phi)
        if self.token_filter is not None:
            results = self.token_filter.apply(text, results)
        return merge_results(results, self.config.score_threshold, text)
