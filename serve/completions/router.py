"""``POST /v1/completions``: clinicians only, metered, streaming or not (the same gate as chat)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from serve.chat.router import SSE_HEADERS, ClinicianKey
from serve.completions.protocol import Completion, CompletionRequest
from serve.completions.service import CompletionService


def build_router() -> APIRouter:
    router = APIRouter(tags=["completions"])

    @router.post("/v1/completions", response_model=Completion)
    async def completions(
        body: CompletionRequest, request: Request, principal: ClinicianKey
    ) -> Completion | StreamingResponse:
        service: CompletionService = request.app.state.services.completions
        prepared = await service.prepare(body, principal)
        if not body.stream:
            return await service.complete(prepared, body, request)
        generation = service.inference.start(prepared)
        return StreamingResponse(
            service.sse(prepared, generation, body, request), media_type="text/event-stream", headers=SSE_HEADERS
        )

    return router
