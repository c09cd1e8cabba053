"""One lexicon per test session: building it costs about a second."""

from __future__ import annotations

import pytest

from deid.recognizers.lexicon import Lexicon, load_lexicon


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    return load_lexicon()
