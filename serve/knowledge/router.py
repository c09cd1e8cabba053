"""``GET /v1/knowledge/passages/{chunk_id}``: the full text behind a citation, served locally."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI

from serve.auth.protocol import Role
from serve.auth.service import Principal, require
from serve.errors import NotFoundError
from serve.grounding import PassageSource
from serve.knowledge.protocol import PASSAGE_PATH, Passage

AnyKey = Annotated[Principal, Depends(require(Role.clinician, Role.auditor, Role.admin))]


def knowledge_router(service: PassageSource) -> APIRouter:
    router = APIRouter(tags=["knowledge"])

    @router.get(PASSAGE_PATH, response_model=Passage)
    def passage(chunk_id: str, _: AnyKey) -> Passage:
        found = service.passage(chunk_id)
        if found is None:
            raise NotFoundError("no passage with this id in the knowledge base", param="chunk_id")
        return found

    return router


def mount_knowledge(app: FastAPI, grounding: object) -> None:
    """Serve passage texts when ``create_app`` grounded answers in a knowledge base."""
    if isinstance(grounding, PassageSource):
        app.include_router(knowledge_router(grounding))
