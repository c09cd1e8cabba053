"""The knowledge base's embedding model behind the API's ``/v1/embeddings`` (``serve.embeddings.protocol.TextEmbedder``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from appliance.kb.config import KnowledgeConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from appliance.kb.embedding import Embedder
    from serve.embeddings.protocol import Embedded


class KnowledgeEmbedder:
    """``serve.embeddings.protocol.TextEmbedder`` with the knowledge base's own embedding set-up
    (same model, token cut-off and int8 layers), so an API client's vectors match the index's.

    The model loads on the first request, not at start-up: most deployments never embed.
    """

    def __init__(self, config: KnowledgeConfig) -> None:
        from appliance.kb.embedding import DIMENSIONS, embedder_signature

        self._config = config
        self._model_id = embedder_signature(config.embed_max_tokens, config.embed_int8)
        self._dimensions = DIMENSIONS
        self._embedder: Embedder | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._sha256: str | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def sha256(self) -> str | None:
        return self._sha256

    def _load(self) -> Embedder:
        if self._embedder is None:
            from transformers import AutoTokenizer

            from appliance.kb.embedding import Embedder, default_model_dir
            from deid.fileio import sha256_file

            directory = default_model_dir()
            config = self._config
            self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            self._sha256 = sha256_file(directory / "model.safetensors")
            self._embedder = Embedder(directory, max_tokens=config.embed_max_tokens, int8=config.embed_int8, threads=1)
        return self._embedder

    def embed(self, texts: list[str]) -> Embedded:
        """One request at a time: torch's thread pool is process-wide, and one embedder is loaded."""
        from serve.embeddings.protocol import Embedded

        with self._lock:
            embedder = self._load()
            vectors = embedder.encode(texts)
            assert self._tokenizer is not None  # loaded with the embedder
            counted = self._tokenizer(texts, truncation=True, max_length=self._config.embed_max_tokens)
        return Embedded(vectors, sum(len(ids) for ids in counted["input_ids"]))
