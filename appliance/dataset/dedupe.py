"""Exact and near-duplicate removal (MinHash over word shingles, with LSH banding).

Duplicates inflate some records' weight and raise the risk that the model memorizes them;
near-duplicates (the same note copied forward with a changed line) are as common in
hospital corpora as exact copies.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

_MERSENNE = np.uint64((1 << 31) - 1)
_WORD = re.compile(r"\w+")


def normalized(text: str) -> str:
    return " ".join(text.lower().split())


def _shingles(text: str, width: int) -> set[int]:
    words = _WORD.findall(text.lower())
    if len(words) < width:
        words = words + [""] * (width - len(words))
    grams = {" ".join(words[i : i + width]) for i in range(len(words) - width + 1)}
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") for g in grams}


def minhash_signature(text: str, *, width: int, coefficients: np.ndarray) -> np.ndarray:
    values = np.fromiter(_shingles(text, width), dtype=np.uint64)
    a, b = coefficients[:, :1], coefficients[:, 1:]
    hashed = (a * values[None, :] + b) % _MERSENNE
    return hashed.min(axis=1)


def _coefficients(permutations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, (1 << 31) - 1, size=(permutations, 2), dtype=np.uint64)


def _bands(permutations: int) -> int:
    """Bands of 4 rows: candidate pairs from about 0.5 similarity, verified afterwards."""
    rows = 4 if permutations % 4 == 0 else 1
    return permutations // rows


def duplicate_indices(
    texts: Sequence[str], *, threshold: float, width: int, permutations: int, seed: int
) -> tuple[set[int], set[int]]:
    """Indices to drop as (exact, near) duplicates of an earlier text; the first copy stays."""
    exact: set[int] = set()
    seen: dict[str, int] = {}
    for index, text in enumerate(texts):
        digest = hashlib.sha256(normalized(text).encode()).hexdigest()
        if digest in seen:
            exact.add(index)
        else:
            seen[digest] = index
    coefficients = _coefficients(permutations, seed)
    bands = _bands(permutations)
    rows = permutations // bands
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    signatures: dict[int, np.ndarray] = {}
    near: set[int] = set()
    for index, text in enumerate(texts):
        if index in exact:
            continue
        signature = minhash_signature(text, width=width, coefficients=coefficients)
        candidates: set[int] = set()
        keys = [(band, signature[band * rows : (band + 1) * rows].tobytes()) for band in range(bands)]
        for key in keys:
            candidates.update(buckets.get(key, ()))
        if any(float(np.mean(signatures[other] == signature)) >= threshold for other in candidates):
            near.add(index)
            continue
        signatures[index] = signature
        for key in keys:
            buckets[key].append(index)
    return exact, near
