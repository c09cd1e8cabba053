"""The hospital's own names: its facilities, acronyms, wards, affiliates and staff roster.

No shipped word list knows that "MGH" or "Ellison 4" or "Finard" names a place at one
particular hospital; the site does. IT lists them once in a TOML file (``deid.site_terms_file``),
one array per entity type::

    HOSPITAL = ["Massachusetts General Hospital", "MGH", "Ellison 4"]
    CLINICIAN = ["Anna Okafor"]

The file's sha256 goes into the run's settings hash, so the ledger shows which list ruled. This
module only reads and checks the file, so a run can refuse a bad one before any worker starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from deid.detection.entities import ALL_ENTITIES
from deid.errors import SiteTermsError

SiteTerms = Mapping[str, Sequence[str]]


def load_site_terms(path: Path) -> dict[str, list[str]]:
    """Terms by entity type; a clear error for a missing, unreadable or ill-shaped file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SiteTermsError(f"site terms file {path}: cannot be read ({error.strerror or type(error).__name__})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise SiteTermsError(f"site terms file {path}: not valid UTF-8 TOML") from None
    terms: dict[str, list[str]] = {}
    for key, values in data.items():
        entity = key.upper()
        if entity not in ALL_ENTITIES:
            raise SiteTermsError(f"site terms file {path}: unknown entity type {key!r} (one of {', '.join(ALL_ENTITIES)})")
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise SiteTermsError(f"site terms file {path}: {key} must be a list of strings")
        terms[entity] = [value.strip() for value in values if value.strip()]
    return terms
