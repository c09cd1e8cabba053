"""The path every generating request takes, whichever endpoint it came through.

Screen the prompt for PHI (types for the ledger, optional redaction), apply the model's chat
template, enforce the token limits, hand the tokens to the batch engine, and when the request
ends (finished, failed or abandoned by its client) record metrics and one ledger entry that
holds counts and types but no text.

A request outlives the key check at its door, so while it runs its key is asked about again
every ``KEY_CHECK_SECONDS`` (a stat of the key file; a parse only when it changed): once the
key is revoked, generation stops, the slot is freed, and the request ends as a 401
``key_revoked`` (an error event in a stream, which has already sent its 200).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from deid.errors import ConfigError
from serve.audit.protocol import RequestRecord
from serve.audit.service import RequestLedger
from serve.auth.service import Authenticator, Principal
from serve.config import ServeConfig
from serve.engine.llama_model import LoadedModel
from serve.engine.sampling import SamplingParams
from serve.engine.scheduler import EngineBusyError, Generation, GenerationEvent
from serve.errors import ApiError, InvalidRequestError, ModelNotFoundError, error_body
from serve.metrics import ApiMetrics
from serve.models.service import ModelService
from serve.privacy.service import PromptPrivacy
from serve.upstream.engine import UpstreamEngine, UpstreamModel

log = logging.getLogger("serve.inference")

CLIENT_CLOSED = 499
KEY_REVOKED = "key_revoked"
KEY_CHECK_SECONDS = 0.5  # how late a revocation may stop a running request, at the cost of a stat
KEY_REVOKED_MESSAGE = "the API key was revoked while this request ran; the answer was stopped"


class GenerationFailedError(ApiError):
    status_code = 503
    error_type = "server_error"
    code = "generation_failed"


class KeyRevokedError(ApiError):
    """The key was revoked while its request ran; the request's own ledger entry already says so."""

    status_code = 401
    error_type = KEY_REVOKED
    code = KEY_REVOKED
    ledgered = True


def stream_error(finish_reason: str) -> bytes:
    """The event a stream ends with (before ``data: [DONE]``) when its generation did not finish."""
    if finish_reason == KEY_REVOKED:
        body = error_body(KEY_REVOKED_MESSAGE, KEY_REVOKED, KEY_REVOKED)
    else:
        body = error_body("generation failed", "server_error", "generation_failed")
    return b"data: " + json.dumps(body).encode() + b"\n\n"


@dataclass
class Prepared:
    """A validated request ready for the engine; holds tokens, never shown to logs."""

    request_id: str
    endpoint: str
    principal: Principal
    prompt: list[int]
    params: SamplingParams
    phi_types: list[str]
    model_id: str
    model_sha256: str
    adapter_sha256: str | None
    upstream: dict[str, object] | None = field(default=None, repr=False)  # screened messages/prompt for an upstream engine
    started: float = field(default_factory=time.perf_counter)
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Outcome:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


class InferenceService:
    def __init__(
        self,
        config: ServeConfig,
        models: ModelService,
        privacy: PromptPrivacy,
        ledger: RequestLedger,
        metrics: ApiMetrics,
        auth: Authenticator,
    ) -> None:
        self.config = config
        self.models = models
        self.privacy = privacy
        self.ledger = ledger
        self.metrics = metrics
        self.auth = auth

    async def prepare(
        self,
        principal: Principal,
        endpoint: str,
        messages: list[dict[str, str]],
        params: SamplingParams,
        requested_model: str | None,
        id_prefix: str,
    ) -> Prepared:
        """A chat: screened message by message, then laid out by the model's chat template."""
        model = self._check(requested_model, params)
        screened = await run_in_threadpool(self.privacy.screen, [m["content"] for m in messages])
        shown = [{"role": m["role"], "content": text} for m, text in zip(messages, screened.texts, strict=True)]
        if not isinstance(model, LoadedModel):
            return self._prepared(principal, endpoint, [], params, screened.phi_types, id_prefix, "messages",
                                  upstream={"messages": shown})
        prompt = await run_in_threadpool(model.tokenize_chat, shown)
        return self._prepared(principal, endpoint, prompt, params, screened.phi_types, id_prefix, "messages")

    async def prepare_text(
        self,
        principal: Principal,
        endpoint: str,
        text: str,
        params: SamplingParams,
        requested_model: str | None,
        id_prefix: str,
    ) -> Prepared:
        """A raw prompt (``/v1/completions``): screened the same way, tokenized as it is, no template."""
        model = self._check(requested_model, params)
        screened = await run_in_threadpool(self.privacy.screen, [text])
        if not isinstance(model, LoadedModel):
            return self._prepared(principal, endpoint, [], params, screened.phi_types, id_prefix, "prompt",
                                  upstream={"prompt": screened.texts[0]})
        prompt = await run_in_threadpool(model.tokenize, screened.texts[0])
        return self._prepared(principal, endpoint, prompt, params, screened.phi_types, id_prefix, "prompt")

    def _check(self, requested_model: str | None, params: SamplingParams) -> LoadedModel | UpstreamModel:
        model = self.models.engine.model
        if requested_model is not None and requested_model != model.model_id:
            raise ModelNotFoundError(
                f"model not found; this server serves '{model.model_id}' (see GET /v1/models)", param="model"
            )
        if params.max_tokens > self.config.max_tokens_limit:
            raise InvalidRequestError(
                f"max_tokens may be at most {self.config.max_tokens_limit}", param="max_tokens"
            )
        return model

    def _prepared(
        self,
        principal: Principal,
        endpoint: str,
        prompt: list[int],
        params: SamplingParams,
        phi_types: list[str],
        id_prefix: str,
        prompt_param: str,
        upstream: dict[str, object] | None = None,
    ) -> Prepared:
        """Token limits apply here to the local engine; an upstream engine counts with its own tokenizer."""
        engine = self.models.engine
        limit = min(self.config.max_prompt_tokens, engine.context_length - 1)
        if len(prompt) > limit:
            raise InvalidRequestError(
                f"the prompt is {len(prompt)} tokens; this server accepts at most {limit}", param=prompt_param
            )
        if not prompt and upstream is None:
            raise InvalidRequestError("the prompt is empty", param=prompt_param)
        model = engine.model
        return Prepared(
            request_id=f"{id_prefix}-{uuid.uuid4().hex}",
            endpoint=endpoint,
            principal=principal,
            prompt=prompt,
            params=params,
            phi_types=phi_types,
            model_id=model.model_id,
            model_sha256=model.sha256,
            adapter_sha256=model.adapter_sha256,
            upstream=upstream,
        )

    def start(self, prepared: Prepared, *, whole_answer: bool = False) -> Generation:
        """``whole_answer``: the caller reads only the end (a non-streaming request)."""
        try:
            engine = self.models.engine
            if isinstance(engine, UpstreamEngine):
                assert prepared.upstream is not None
                return engine.submit(prepared.upstream, prepared.params)
            return engine.submit(prepared.prompt, prepared.params, cache_owner=prepared.principal.key_id,
                                 whole_answer=whole_answer)
        except EngineBusyError as busy:
            busy.headers = {"Retry-After": str(self.config.retry_after_s)}
            raise  # the error handler records it as a refusal (bounded under a flood)

    async def complete(self, prepared: Prepared, request: Request) -> Outcome:
        """Run to the end: the stream below, gathered (it records the request and stops it early)."""
        generation = self.start(prepared, whole_answer=True)
        parts: list[str] = []
        last: GenerationEvent | None = None
        async with aclosing(self.stream(prepared, generation, request)) as events:
            async for event in events:
                parts.append(event.text)
                last = event
        status = self._status_of(last)
        if last is not None and last.finish_reason == KEY_REVOKED:
            raise KeyRevokedError(KEY_REVOKED_MESSAGE, headers={"WWW-Authenticate": "Bearer"})
        if status >= 500:
            raise GenerationFailedError("generation failed; retry the request")
        assert last is not None and last.finish_reason is not None
        return Outcome("".join(parts), last.finish_reason, last.prompt_tokens, last.completion_tokens,
                       last.cached_tokens)

    async def stream(
        self, prepared: Prepared, generation: Generation, request: Request
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Events as they come, until the end, the client hanging up (even while queued) or the key revoked.

        After a revocation nothing more of the answer goes out, not even text already generated:
        the next event is the ``key_revoked`` end.
        """
        last: GenerationEvent | None = None
        watch = _Watch(request, generation, prepared.principal, self.auth)
        try:
            async for event in generation.events():
                revoked = watch.revoked
                last = GenerationEvent("", KEY_REVOKED, len(prepared.prompt), generation.generated) if revoked else event
                yield last
                if revoked:
                    break
        finally:
            watch.close()
            if last is None or last.finish_reason is None:
                generation.cancel()
            status = self._status_of(last)
            await asyncio.shield(run_in_threadpool(self._record, prepared, generation, last, status))

    @staticmethod
    def _status_of(last: GenerationEvent | None) -> int:
        if last is None or last.finish_reason is None or last.finish_reason == "cancelled":
            return CLIENT_CLOSED
        if last.finish_reason == KEY_REVOKED:
            return KeyRevokedError.status_code
        if last.finish_reason in ("stop", "length"):
            return 200
        return 503

    def _record(
        self, prepared: Prepared, generation: Generation | None, last: GenerationEvent | None, status: int
    ) -> None:
        finished = last if last is not None and last.finish_reason is not None else None
        if finished is not None:
            self.metrics.observe_generation(finished.prompt_tokens, finished.completion_tokens, finished.decode_seconds)
        reason = finished.finish_reason if finished is not None else ("cancelled" if generation is not None else None)
        self.ledger.record(
            RequestRecord(
                request_id=prepared.request_id,
                endpoint=prepared.endpoint,
                key_id=prepared.principal.key_id,
                role=prepared.principal.role.value,
                model_sha256=prepared.model_sha256 or None,
                prompt_tokens=finished.prompt_tokens if finished is not None else len(prepared.prompt),
                completion_tokens=generation.generated if generation is not None else 0,
                phi_types=prepared.phi_types,
                latency_ms=int((time.perf_counter() - prepared.started) * 1000),
                status=status,
                reason=reason,
                adapter_sha256=prepared.adapter_sha256,
            )
        )


class _Watch:
    """The two reasons a running generation stops early: its client hangs up, or its key is revoked."""

    def __init__(self, request: Request, generation: Generation, principal: Principal, auth: Authenticator) -> None:
        self.generation = generation
        self.revoked = False
        self._tasks = (
            asyncio.create_task(_cancel_on_disconnect(request, generation)),
            asyncio.create_task(self._watch_key(principal, auth)),
        )

    async def _watch_key(self, principal: Principal, auth: Authenticator) -> None:
        """Time-based, not per token: a stalled or queued generation is stopped just as soon."""
        while True:
            await asyncio.sleep(KEY_CHECK_SECONDS)
            try:
                active = auth.still_active(principal)
            except ConfigError:
                # New requests are refused while the key file is unreadable; this one is asked again.
                log.warning("API key file unreadable; the running request's key is checked again shortly")
                continue
            if not active:
                self.revoked = True
                self.generation.stop(KEY_REVOKED)
                return

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


async def _cancel_on_disconnect(request: Request, generation: Generation) -> None:
    """After the body is read, the next ASGI message can only be the client hanging up."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            generation.cancel()
            return
