"""Planted PHI must be something no surrogate can ever be, or a leak check flakes.

Surrogates are keyed by a secret made fresh for each test home, so a canary that is also a
surrogate pool entry ("Whitaker" is a Faker surname; "Greenview" is a Faker-style city, a
surname plus "view") turns up in the output now and then without anything having leaked.
"""

from __future__ import annotations

from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider

_NAMES = frozenset(n.casefold() for n in (*PersonProvider.first_names, *PersonProvider.last_names))
_CITY_SUFFIXES = tuple(s.casefold() for s in AddressProvider.city_suffixes)


def surrogates_could_produce(word: str) -> bool:
    """Whether a name, city or facility surrogate could spell ``word`` (case ignored)."""
    folded = word.casefold()
    if folded in _NAMES:
        return True
    return any(folded.endswith(suffix) and folded[: -len(suffix)] in _NAMES for suffix in _CITY_SUFFIXES)
