"""Embeddings behind the same gate as generation: PHI screened, limits enforced, one ledger entry.

The ledger entry holds counts and PHI types, never a text or a vector. With ``redact_phi`` on,
the redacted text is what gets embedded, as it is what the model would see.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from serve.audit.protocol import RequestRecord
from serve.audit.service import RequestLedger
from serve.auth.service import Principal
from serve.embeddings.protocol import (
    MAX_INPUTS,
    EmbeddingData,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    TextEmbedder,
)
from serve.errors import (
    ApiError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
)
from serve.privacy.service import PromptPrivacy

ENDPOINT = "/v1/embeddings"


class EmbeddingsUnavailableError(NotFoundError):
    code = "embeddings_unavailable"


class EmbeddingFailedError(ApiError):
    status_code = 503
    error_type = "server_error"
    code = "embedding_failed"


def input_texts(body: EmbeddingRequest) -> list[str]:
    """The inputs as a list of strings; token ids and empty strings are refused by name."""
    given = body.input
    texts = [given] if isinstance(given, str) else list(given)
    if not texts:
        raise InvalidRequestError("input holds no text", param="input")
    strings = [text for text in texts if isinstance(text, str)]
    if len(strings) != len(texts):
        raise InvalidRequestError("inputs as token ids are not supported; send the text", param="input")
    if len(strings) > MAX_INPUTS:
        raise InvalidRequestError(f"at most {MAX_INPUTS} inputs per request", param="input")
    if any(not text.strip() for text in strings):
        raise InvalidRequestError("an input is empty", param="input")
    return strings


class EmbeddingService:
    def __init__(
        self, embedder: TextEmbedder | None, privacy: Callable[[], PromptPrivacy], ledger: RequestLedger
    ) -> None:
        """``privacy`` is asked each time: the screening pipeline replaces a pass-through once it loads."""
        self.embedder = embedder
        self.privacy = privacy
        self.ledger = ledger

    async def embed(self, body: EmbeddingRequest, principal: Principal) -> EmbeddingList:
        embedder = self.embedder
        if embedder is None:
            raise EmbeddingsUnavailableError("this server has no embedding model configured")
        if body.model != embedder.model_id:
            raise ModelNotFoundError(
                f"model not found; embeddings here come from '{embedder.model_id}'", param="model"
            )
        if body.dimensions is not None and body.dimensions != embedder.dimensions:
            raise InvalidRequestError(
                f"this embedding model has {embedder.dimensions} dimensions and cannot shorten them",
                param="dimensions",
            )
        texts = input_texts(body)
        started = time.perf_counter()
        record = RequestRecord(
            request_id=f"embd-{uuid.uuid4().hex}",
            endpoint=ENDPOINT,
            key_id=principal.key_id,
            role=principal.role.value,
            model_sha256=embedder.sha256,
        )
        screened = await run_in_threadpool(self.privacy().screen, texts)
        record.phi_types = screened.phi_types
        try:
            embedded = await run_in_threadpool(embedder.embed, screened.texts)
        except Exception as error:  # the model failed, not the request: 503, entry written
            record.status, record.reason = 503, "error"
            record.latency_ms = int((time.perf_counter() - started) * 1000)
            await run_in_threadpool(self.ledger.record, record)
            raise EmbeddingFailedError("embedding failed; retry the request") from error
        record.prompt_tokens, record.reason = embedded.tokens, "embedded"
        record.latency_ms = int((time.perf_counter() - started) * 1000)
        await run_in_threadpool(self.ledger.record, record)
        rows = embedded.vectors.astype("<f4", copy=False)
        if body.encoding_format == "base64":
            data = [EmbeddingData(index=i, embedding=base64.b64encode(row.tobytes()).decode()) for i, row in enumerate(rows)]
        else:
            data = [EmbeddingData(index=i, embedding=row.tolist()) for i, row in enumerate(rows)]
        return EmbeddingList(
            data=data,
            model=embedder.model_id,
            usage=EmbeddingUsage(prompt_tokens=embedded.tokens, total_tokens=embedded.tokens),
        )
