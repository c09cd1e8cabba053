"""``POST /v1/chat/completions``: clinicians only, metered, streaming or not."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from serve.auth.protocol import Role
from serve.auth.service import Principal, require
from serve.chat.protocol import ChatCompletion, ChatCompletionRequest
from serve.chat.service import ChatService

ClinicianKey = Annotated[Principal, Depends(require(Role.clinician, metered=True))]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def build_router() -> APIRouter:
    router = APIRouter(tags=["chat"])

    @router.post("/v1/chat/completions", response_model=ChatCompletion)
    async def chat_completions(
        body: ChatCompletionRequest, request: Request, principal: ClinicianKey
    ) -> ChatCompletion | StreamingResponse:
        service: ChatService = request.app.state.services.chat
        prepared, grounded, shape = await service.prepare(body, principal)
        if not body.stream:
            return await service.complete(prepared, grounded, shape, request)
        generation = service.inference.start(prepared)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            service.sse(prepared, generation, include_usage, request, grounded, shape),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    return router
