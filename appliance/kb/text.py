"""Word-level text handling shared by chunking, BM25 and entity matching.

One tokenizer for all three keeps a question's terms, a chunk's postings and an entity's
name comparable without a language-specific stemmer.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    (are) (is) also may might must shall us""".split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens, stop words kept (entity names and phrases need them)."""
    return _WORD.findall(text.lower())


def normalize_term(word: str) -> str:
    """A light plural/possessive fold so 'tumors' meets 'tumor' without a full stemmer."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def index_terms(text: str) -> list[str]:
    """Terms BM25 indexes and queries with: stop words dropped, plurals folded."""
    return [normalize_term(w) for w in words(text) if w not in STOPWORDS]
