"""``POST /v1/embeddings``: clinicians only, metered, like generation."""

from __future__ import annotations

from fastapi import APIRouter, Request

from serve.chat.router import ClinicianKey
from serve.embeddings.protocol import EmbeddingList, EmbeddingRequest


def build_router() -> APIRouter:
    router = APIRouter(tags=["embeddings"])

    @router.post("/v1/embeddings", response_model=EmbeddingList)
    async def embeddings(body: EmbeddingRequest, request: Request, principal: ClinicianKey) -> EmbeddingList:
        return await request.app.state.services.embeddings.embed(body, principal)

    return router
