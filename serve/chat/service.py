"""Chat completions on top of the shared inference path: OpenAI response and SSE chunk shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from serve.auth.service import Principal
from serve.chat.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
)
from serve.config import ServeConfig
from serve.engine.sampling import SamplingParams
from serve.engine.scheduler import Generation
from serve.grounding import GroundedPrompt, Grounding, with_notice
from serve.inference import InferenceService, Prepared

ENDPOINT = "/v1/chat/completions"


class ChatService:
    def __init__(self, config: ServeConfig, inference: InferenceService, grounding: Grounding | None) -> None:
        self.config = config
        self.inference = inference
        self.grounding = grounding

    async def prepare(self, body: ChatCompletionRequest, principal: Principal) -> tuple[Prepared, GroundedPrompt]:
        """The request admitted, with its grounding (no citations and no notice when not grounded)."""
        messages = [message.plain() for message in body.messages]
        grounded = GroundedPrompt(messages=messages)
        if body.grounded and self.grounding is not None:
            question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            grounded = await run_in_threadpool(self.grounding.ground, question, messages)
        default_tokens = min(self.config.default_max_tokens, self.config.max_tokens_limit)
        params = SamplingParams(
            max_tokens=body.max_completion_tokens or body.max_tokens or default_tokens,
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            seed=body.seed,
            stop=body.stops(),
        )
        prepared = await self.inference.prepare(
            principal, ENDPOINT, grounded.messages, params, body.model, "chatcmpl"
        )
        return prepared, grounded

    async def complete(self, prepared: Prepared, grounded: GroundedPrompt, request: Request) -> ChatCompletion:
        outcome = await self.inference.complete(prepared, request)
        content = with_notice(outcome.text, grounded.notice)
        return ChatCompletion(
            id=prepared.request_id,
            created=prepared.created,
            model=prepared.model_id,
            choices=[Choice(message=AssistantMessage(content=content), finish_reason=outcome.finish_reason)],
            usage=Usage(
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
            ),
            citations=grounded.citations or None,
        )

    async def sse(
        self,
        prepared: Prepared,
        generation: Generation,
        include_usage: bool,
        request: Request,
        grounded: GroundedPrompt,
    ) -> AsyncIterator[bytes]:
        """Server-sent events exactly as OpenAI sends them, ending with ``data: [DONE]``.

        Grounded streams carry the citations on the first chunk (an extension field OpenAI clients
        ignore) and start the text with the nothing-relevant notice when there is one.
        """

        def chunk(
            delta: Delta, finish: str | None = None, usage: Usage | None = None, citations: list | None = None
        ) -> bytes:
            body = ChatCompletionChunk(
                id=prepared.request_id,
                created=prepared.created,
                model=prepared.model_id,
                choices=[] if usage else [ChunkChoice(delta=delta, finish_reason=finish)],
                usage=usage,
                citations=citations,
            )
            return b"data: " + body.model_dump_json(exclude_none=not usage).encode() + b"\n\n"

        opening = f"{grounded.notice}\n\n" if grounded.notice else ""
        yield chunk(Delta(role="assistant", content=opening), citations=grounded.citations or None)
        async for event in self.inference.stream(prepared, generation, request):
            if event.finish_reason is None:
                yield chunk(Delta(content=event.text))
                continue
            if event.finish_reason not in ("stop", "length"):
                error = {"error": {"message": "generation failed", "type": "server_error", "code": "generation_failed"}}
                yield b"data: " + json.dumps(error).encode() + b"\n\n"
                return
            if event.text:
                yield chunk(Delta(content=event.text))
            yield chunk(Delta(), event.finish_reason)
            if include_usage:
                total = event.prompt_tokens + event.completion_tokens
                yield chunk(Delta(), usage=Usage(
                    prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens, total_tokens=total
                ))
        yield b"data: [DONE]\n\n"
