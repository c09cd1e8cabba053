"""Text completions on the shared inference path: the prompt goes to the model as written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import Request

from serve.auth.service import Principal
from serve.chat.protocol import Usage
from serve.completions.protocol import Completion, CompletionChoice, CompletionRequest
from serve.config import ServeConfig
from serve.engine.sampling import SamplingParams
from serve.engine.scheduler import Generation
from serve.errors import InvalidRequestError
from serve.inference import InferenceService, Prepared, stream_error

ENDPOINT = "/v1/completions"
# OpenAI's default for this endpoint; a client that relies on it gets what it expects.
OPENAI_DEFAULT_MAX_TOKENS = 16


class CompletionService:
    def __init__(self, config: ServeConfig, inference: InferenceService) -> None:
        self.config = config
        self.inference = inference

    async def prepare(self, body: CompletionRequest, principal: Principal) -> Prepared:
        field = body.unsupported()
        if field is not None:
            raise InvalidRequestError(f"{field} is not supported by this server; leave it out", param=field)
        prompt = body.single_prompt()
        if prompt is None:
            raise InvalidRequestError("send one prompt per request (several would be n > 1)", param="prompt")
        if not isinstance(prompt, str):
            raise InvalidRequestError("prompts as token ids are not supported; send the text", param="prompt")
        params = SamplingParams(
            max_tokens=body.max_tokens or min(OPENAI_DEFAULT_MAX_TOKENS, self.config.max_tokens_limit),
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            seed=body.seed,
            stop=body.stops(),
        )
        return await self.inference.prepare_text(principal, ENDPOINT, prompt, params, body.model, "cmpl")

    async def complete(self, prepared: Prepared, body: CompletionRequest, request: Request) -> Completion:
        outcome = await self.inference.complete(prepared, request)
        text = f"{body.prompt}{outcome.text}" if body.echo else outcome.text
        return Completion(
            id=prepared.request_id,
            created=prepared.created,
            model=prepared.model_id,
            choices=[CompletionChoice(text=text, finish_reason=outcome.finish_reason)],
            usage=Usage.of(outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens),
        )

    async def sse(
        self, prepared: Prepared, generation: Generation, body: CompletionRequest, request: Request
    ) -> AsyncIterator[bytes]:
        """``text_completion`` chunks, the usage chunk when asked for, then ``data: [DONE]``."""
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def chunk(text: str, finish: str | None = None, usage: Usage | None = None) -> bytes:
            choices = [] if usage else [CompletionChoice(text=text, finish_reason=finish)]
            payload = Completion(
                id=prepared.request_id, created=prepared.created, model=prepared.model_id, choices=choices, usage=usage
            )
            return b"data: " + payload.model_dump_json(exclude_none=usage is None).encode() + b"\n\n"

        if body.echo:
            yield chunk(str(body.prompt))
        async with aclosing(self.inference.stream(prepared, generation, request)) as events:
            async for event in events:
                if event.finish_reason is None:
                    yield chunk(event.text)
                    continue
                if event.finish_reason not in ("stop", "length"):
                    yield stream_error(event.finish_reason)
                    break
                yield chunk(event.text, event.finish_reason)
                if include_usage:
                    yield chunk("", usage=Usage.of(event.prompt_tokens, event.completion_tokens, event.cached_tokens))
        yield b"data: [DONE]\n\n"
