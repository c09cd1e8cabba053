"""Word lists behind the name recognizers, all from installed packages or built by the project.

- first and last names: the US Census 1990 lists shipped by the ``names`` package (MIT) and
  the person providers of ``faker`` (MIT) for several locales, so immigrant names are covered;
- common words: lower-case words of medical prose (``data/common_words.txt``, built from
  MedQuAD and PubMedQA by ``bench/data/build_common_words.py``) plus spaCy's stop words;
- clinical terms: ``clinical_terms.CLINICAL_TERMS``;
- drug names: brand and generic, one word each (``data/drug_names.txt``, built by
  ``bench/data/build_drug_names.py``), so "Protonix" is not taken for an unlisted surname;
- places: US towns, world cities, US counties and countries from GeoNames (``data/places.txt``,
  built by ``bench/data/build_places.py``), folded to lower-case ASCII; ``common_places`` are
  those that are also ordinary words ("bath", "mobile") and need context.
A name that is also a common word ("brown", "will") is ambiguous and needs context.
Built once per detector (about a quarter of a second) and shared by its recognizers.
"""

from __future__ import annotations

import importlib
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

from deid.recognizers.clinical_terms import CLINICAL_TERMS

FAKER_LOCALES = (
    "en_US", "en_GB", "en_IE", "en_IN", "en_NZ", "es_ES", "es_MX", "de_DE", "fr_FR", "it_IT", "pt_BR",
    "pl_PL", "nl_NL", "sv_SE", "vi_VN", "ga_IE", "cs_CZ", "hu_HU", "fi_FI", "da_DK", "no_NO", "ro_RO",
    "hr_HR", "sk_SK", "tr_TR", "fil_PH", "en_PH", "zh_CN", "ko_KR", "hi_IN", "yo_NG", "zu_ZA", "sw",
)
PLAIN_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|['\-](?=[^\W\d_]))+")
CENSUS_SURNAMES_KEPT = 60000


@dataclass(frozen=True)
class Lexicon:
    first_names: frozenset[str]
    last_names: frozenset[str]
    common_words: frozenset[str]
    clinical_terms: frozenset[str]
    stop_words: frozenset[str]
    places: frozenset[str] = frozenset()
    common_places: frozenset[str] = frozenset()
    drug_names: frozenset[str] = frozenset()

    def is_name(self, lower: str) -> bool:
        if lower in self.stop_words:
            return False
        return lower in self.first_names or lower in self.last_names

    def is_ambiguous(self, lower: str) -> bool:
        """A word that is a name but also ordinary English or clinical shorthand."""
        return lower in self.common_words or lower in self.clinical_terms

    def is_common(self, lower: str) -> bool:
        """An ordinary word, also when inflected ("works", "requested")."""
        if lower in self.common_words:
            return True
        return any(stem in self.common_words for stem in _stems(lower))

    def is_unknown(self, lower: str) -> bool:
        """Not a word of English or medicine at all: next to a name, most likely another name."""
        if len(lower) < 2 or not lower.replace("'", "").replace("-", "").isalpha():
            return False
        if lower in self.clinical_terms or lower in self.common_words or lower in self.drug_names:
            return False
        return not any(stem in self.common_words or stem in self.clinical_terms for stem in _stems(lower))


INFLECTIONS = ("ies", "ied", "ing", "ers", "es", "ed", "er", "ly", "s", "d", "'s")


def _stems(lower: str) -> list[str]:
    """Candidate dictionary forms of an inflected word ("tolerating" -> "tolerat", "tolerate")."""
    stems = []
    for suffix in INFLECTIONS:
        if lower.endswith(suffix) and len(lower) - len(suffix) >= 3:
            stem = lower[: -len(suffix)]
            stems += [stem, stem + "e", stem + "y"]
            if len(stem) > 3 and stem[-1] == stem[-2]:
                stems.append(stem[:-1])
    if "-" in lower:
        stems += [part for part in lower.split("-") if len(part) >= 3]
    return stems


def _census_names(file_name: str, limit: int | None = None) -> set[str]:
    package_dir = Path(str(importlib.resources.files("names")))
    with open(package_dir / file_name, encoding="ascii") as handle:
        rows = [line.split(maxsplit=1)[0].lower() for line in handle if line.strip()]
    return set(rows[:limit])


def _faker_names() -> tuple[set[str], set[str]]:
    first: set[str] = set()
    last: set[str] = set()
    for locale in FAKER_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ModuleNotFoundError:
            continue
        for attribute in ("first_names", "first_names_male", "first_names_female"):
            first.update(str(name).lower() for name in getattr(provider, attribute, ()))
        last.update(str(name).lower() for name in getattr(provider, "last_names", ()))
    return first, last


def _plain(words: set[str]) -> frozenset[str]:
    """Single ASCII words only: the recognizers match word by word."""
    return frozenset(word for word in words if PLAIN_NAME.fullmatch(word))


def load_lexicon() -> Lexicon:
    from spacy.lang.en.stop_words import STOP_WORDS

    from deid.detection.presidio_api import spacy  # noqa: F401 - spaCy first, without torch

    faker_first, faker_last = _faker_names()
    first = _census_names("dist.male.first") | _census_names("dist.female.first") | faker_first
    last = _census_names("dist.all.last", CENSUS_SURNAMES_KEPT) | faker_last
    common = _data_lines("common_words.txt")
    places = _data_lines("places.txt")
    return Lexicon(
        first_names=_plain(first),
        last_names=_plain(last),
        common_words=frozenset(common | set(STOP_WORDS)),
        clinical_terms=CLINICAL_TERMS,
        stop_words=frozenset(STOP_WORDS),
        places=frozenset(place.lstrip("~") for place in places),
        common_places=frozenset(place[1:] for place in places if place.startswith("~")),
        drug_names=frozenset(_data_lines("drug_names.txt")),
    )


def _data_lines(file_name: str) -> set[str]:
    data_file = importlib.resources.files("deid.recognizers") / "data" / file_name
    return {line.strip() for line in data_file.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")}
