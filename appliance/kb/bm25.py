"""Okapi BM25 over chunk texts, held as numpy postings (no search server, no scipy)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from appliance.kb.text import index_terms


class BM25Index:
    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        vocabulary: dict[str, int] = {}
        term_ids: list[int] = []
        doc_ids: list[int] = []
        tfs: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for doc, text in enumerate(texts):
            counts = Counter(index_terms(text))
            lengths[doc] = sum(counts.values())
            for term, tf in counts.items():
                term_ids.append(vocabulary.setdefault(term, len(vocabulary)))
                doc_ids.append(doc)
                tfs.append(tf)
        order = np.argsort(np.asarray(term_ids, dtype=np.int64), kind="stable")
        sorted_terms = np.asarray(term_ids, dtype=np.int64)[order]
        self._docs = np.asarray(doc_ids, dtype=np.int64)[order]
        self._tfs = np.asarray(tfs, dtype=np.float32)[order]
        self._offsets = np.searchsorted(sorted_terms, np.arange(len(vocabulary) + 1))
        self._vocabulary = vocabulary
        self._size = len(texts)
        average = float(lengths.mean()) if len(texts) else 1.0
        self._norm = (k1 * (1.0 - b + b * lengths / max(average, 1e-9))).astype(np.float32)

    def scores(self, query: str) -> np.ndarray:
        scores = np.zeros(self._size, dtype=np.float32)
        for term in set(index_terms(query)):
            term_id = self._vocabulary.get(term)
            if term_id is None:
                continue
            start, end = self._offsets[term_id], self._offsets[term_id + 1]
            docs, tfs = self._docs[start:end], self._tfs[start:end]
            idf = math.log(1.0 + (self._size - len(docs) + 0.5) / (len(docs) + 0.5))
            scores[docs] += idf * tfs * (self.k1 + 1.0) / (tfs + self._norm[docs])
        return scores
