"""Output names for input files whose names may carry PHI.

Exports are often named after the patient (``Quackenbush_Zebulon_MRN40417823.jsonl``), and the
name would otherwise reach the output folder, the ledger's ``source``, the run journal and
what ``deid run`` prints. Each path component is judged on its own:

- it keeps its name when every word of its stem is an ordinary English or clinical word, a
  record-format word such as ``fhir``, or a short or drug word that is not a listed first or
  last name, and it holds no run of four or more digits nor three or more groups of digits;
- otherwise it becomes ``f-`` and 16 hex digits of an HMAC of the component under the keystore
  secret ``file-name``, followed by the component's extensions (``.jsonl``, ``.ndjson.gz``), which
  the readers need.

The HMAC is deterministic, so a resumed run and a rerun map every input to the same output
name, and folder structure is kept. A name made only of words that are also ordinary English
("Rose_Hope.txt") keeps its name, which is why sites that name exports after patients should
set ``deid.file_naming = "pseudonymize"``: every component pseudonymized, no judgement. Neither
the original name nor the mapping is written anywhere: only the keystore's owner can recompute
which output came from which input.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deid.config import FileNaming
from deid.keystore import keyed_hash

if TYPE_CHECKING:
    from deid.recognizers.lexicon import Lexicon

FILE_NAME_SECRET = "file-name"
PSEUDONYM_PREFIX = "f-"
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}$")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_LETTERS = re.compile(r"[^\W\d_]+")
_DIGITS = re.compile(r"\d+")
# Record-format and export words hospital file names are made of: some no dictionary lists,
# some are also listed surnames ("Sample", "Records") but name no one in a file name.
FORMAT_WORDS = frozenset(
    {
        "fhir", "hl7", "ccda", "cda", "adt", "oru", "orm", "siu", "mdm", "ndjson", "jsonl", "json", "csv",
        "tsv", "txt", "xml", "ehr", "emr", "deid", "phi", "mimic", "ccd", "bundle", "bundles", "sample",
        "samples", "record", "records", "lab", "labs", "note", "notes", "test", "tests", "data", "export",
        "exports", "batch", "part", "patient", "patients", "visit", "visits", "report", "reports", "dev",
        "val", "train", "multiline", "synth", "synthetic", "deidentified",
    }
)


@cache
def _lexicon() -> Lexicon:
    """Loaded once per process, only when a run has file names to judge."""
    from deid.recognizers.lexicon import load_lexicon

    return load_lexicon()


def _extensions(component: str) -> tuple[str, str]:
    """(stem, extensions): at most two trailing extensions, each a letter then up to five letters or digits."""
    stem, extensions = component, ""
    for _ in range(2):
        match = _EXTENSION.search(stem)
        if match is None or match.start() == 0:
            break
        extensions = match.group() + extensions
        stem = stem[: match.start()]
    return stem, extensions


def _plain_word(word: str) -> bool:
    lexicon = _lexicon()
    lower = word.lower()
    if lower in FORMAT_WORDS or lexicon.is_common(lower) or lower in lexicon.clinical_terms:
        return True
    if lexicon.is_name(lower):
        return False
    return len(lower) <= 3 or lower in lexicon.drug_names


def may_carry_phi(stem: str) -> bool:
    """Whether a file name's stem could name a person or hold an identifier or a date."""
    digits = _DIGITS.findall(stem)
    if any(len(run) >= 4 for run in digits) or len(digits) >= 3:
        return True
    words = [word for letters in _LETTERS.findall(stem) for word in (_WORD.findall(letters) or [letters])]
    return not all(_plain_word(word) for word in words)


def output_name(name: str, secret: bytes, naming: FileNaming = FileNaming.keep_safe) -> str:
    """The output path (POSIX, relative) for an input path, component by component."""
    parts = []
    for component in PurePosixPath(name).parts:
        stem, extensions = _extensions(component)
        if naming is FileNaming.pseudonymize or may_carry_phi(stem):
            component = PSEUDONYM_PREFIX + keyed_hash(secret, component)[:16] + extensions
        parts.append(component)
    return PurePosixPath(*parts).as_posix() if parts else name
