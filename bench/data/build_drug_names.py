"""Build ``deid/recognizers/data/drug_names.txt``: drug names that are never people or places.

Brand and generic drug names ("Protonix", "Xarelto", "Duoneb") are capitalised in notes and are
in no English word list, which makes them look exactly like unlisted surnames. This list tells
the recognizers they are words of medicine. It is every single-word name and synonym (four or
more ASCII letters) in the dictionary shipped by ``drug-named-entity-recognition`` 2.0.9 (MIT;
compiled by Fast Data Science from DrugBank open data, MeSH, MedlinePlus, PubChem, the NHS and
Wikipedia), less every word the name lists also hold ("allegra", "kendrick"), so a listed name is
never silenced. Only the word list ships; the package is needed to rebuild it:
``.venv/bin/pip install -c constraints.txt '.[data]' && .venv/bin/python bench/data/build_drug_names.py``.
"""

from __future__ import annotations

import bz2
import importlib.resources
import pickle
import re
from pathlib import Path

TARGET = Path(__file__).resolve().parents[2] / "deid" / "recognizers" / "data" / "drug_names.txt"
SOURCE_PACKAGE = "drug_named_entity_recognition"
SOURCE_FILE = "drug_ner_dictionary.pkl.bz2"
SINGLE_WORD = re.compile(r"[a-z]{4,}")


def drug_words() -> set[str]:
    data_file = importlib.resources.files(SOURCE_PACKAGE) / SOURCE_FILE
    with bz2.open(str(data_file)) as handle:
        dictionary = pickle.load(handle)  # the pinned package's own data file, read at build time only
    return {variant for variant in dictionary["drug_variant_to_canonical"] if SINGLE_WORD.fullmatch(variant)}


def main() -> None:
    from deid.recognizers.lexicon import load_lexicon

    lexicon = load_lexicon()
    words = sorted(word for word in drug_words() if not lexicon.is_name(word))
    header = "# Built by bench/data/build_drug_names.py from drug-named-entity-recognition 2.0.9; see LICENSES.md\n"
    TARGET.write_text(header + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{len(words)} drug names -> {TARGET}")


if __name__ == "__main__":
    main()
