"""``GET /v1/models`` for any valid key; ``POST /v1/admin/reload`` for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from serve.auth.protocol import Role
from serve.auth.service import Principal, require
from serve.models.protocol import ModelCard, ModelList, ReloadResult

AnyKey = Annotated[Principal, Depends(require(Role.clinician, Role.auditor, Role.admin))]
AdminKey = Annotated[Principal, Depends(require(Role.admin))]


def build_router() -> APIRouter:
    router = APIRouter(tags=["models"])

    @router.get("/v1/models", response_model=ModelList)
    def list_models(request: Request, _: AnyKey) -> ModelList:
        """The generating model (its configured id while it loads), then the embedding model if any."""
        services = request.app.state.services
        models, embedder = services.models, services.embeddings.embedder
        cards = [ModelCard(id=models.model_id, created=models.created, ready=models.ready)]
        if embedder is not None:
            cards.append(ModelCard(id=embedder.model_id, created=models.created))
        return ModelList(data=cards)

    @router.post("/v1/admin/reload", response_model=ReloadResult)
    async def reload_model(request: Request, admin: AdminKey) -> ReloadResult:
        services = request.app.state.services
        models = services.models
        seconds = await run_in_threadpool(models.load)
        await run_in_threadpool(services.ledger.record_admin, "model.reload", admin.key_id, model_sha256=models.sha256)
        return ReloadResult(model=models.model_id, sha256=models.sha256, load_seconds=round(seconds, 3))

    return router
