"""A real detector, built once for the reader tests, and contexts around it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deid.anonymize.operators import Anonymizer
from deid.anonymize.scrubber import Scrubber
from deid.anonymize.surrogates import SurrogateFactory
from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.readers.base import NoPatients, PatientLookup, ReaderContext


@pytest.fixture(scope="session")
def detector() -> PhiDetector:
    return PhiDetector(DeidConfig())


@pytest.fixture()
def make_context(detector: PhiDetector) -> Callable[..., ReaderContext]:
    def make(config: DeidConfig | None = None, patients: PatientLookup | None = None, key: bytes = b"s" * 32) -> ReaderContext:
        config = config or DeidConfig()
        anonymizer = Anonymizer(config, SurrogateFactory(key, date_shift_max_days=config.date_shift_max_days))
        return ReaderContext(config, Scrubber(detector, anonymizer), patients or NoPatients(), b"d" * 32)

    return make
