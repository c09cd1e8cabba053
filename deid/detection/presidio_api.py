"""Presidio and spaCy as the detector uses them, imported without torch and transformers.

``deid`` must not pull in torch or transformers. Presidio imports its Hugging Face engine, and
spaCy's thinc probes for torch, whenever those packages are installed (they are, for training),
which costs seconds per process and loads both. While Presidio and spaCy are first imported
here, both are marked unavailable, which their own guarded imports handle; the marks are removed
afterwards, so code elsewhere in the process can still import them. Every module of the
detector takes Presidio and spaCy names from here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

NOT_FOR_DEID = ("torch", "transformers")


@contextmanager
def _unavailable(modules: tuple[str, ...]) -> Iterator[None]:
    hidden = [name for name in modules if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import name" raise ImportError
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]


with _unavailable(NOT_FOR_DEID):
    import spacy
    from presidio_analyzer import (
        AnalysisExplanation,
        AnalyzerEngine,
        EntityRecognizer,
        RecognizerRegistry,
        RecognizerResult,
    )
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
    from spacy.tokens import Doc

__all__ = [
    "AnalysisExplanation",
    "AnalyzerEngine",
    "ContextAwareEnhancer",
    "Doc",
    "EntityRecognizer",
    "NerModelConfiguration",
    "NlpArtifacts",
    "RecognizerRegistry",
    "RecognizerResult",
    "SpacyNlpEngine",
    "spacy",
]
