"""``POST /v1/feedback``: a clinician rates an earlier answer, optionally with a corrected one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from serve.audit.service import RequestLedger
from serve.auth.protocol import Role
from serve.auth.service import Principal, require
from serve.config import ServeConfig
from serve.feedback.capture import FeedbackCapture
from serve.feedback.protocol import FeedbackRequest, FeedbackResponse
from serve.feedback.service import FeedbackService, FeedbackStore, store_path
from serve.privacy.service import PromptPrivacy

ClinicianKey = Annotated[Principal, Depends(require(Role.clinician, metered=True))]


def build_router() -> APIRouter:
    router = APIRouter(tags=["feedback"])

    @router.post("/v1/feedback", response_model=FeedbackResponse)
    async def feedback(body: FeedbackRequest, request: Request, principal: ClinicianKey) -> FeedbackResponse:
        service: FeedbackService = request.app.state.feedback
        return await run_in_threadpool(service.rate, body, principal)

    return router


def mount_feedback(app: FastAPI, config: ServeConfig, home: Path, ledger: RequestLedger,
                   privacy: Callable[[], PromptPrivacy]) -> FeedbackService:
    """The feedback endpoint, and (when ``serve.feedback`` is on) the capture of answers it rates."""
    store = FeedbackStore(store_path(home), config.feedback_max_answers) if config.feedback else None
    service = FeedbackService(store, privacy, ledger)
    app.state.feedback = service
    app.include_router(build_router())
    if store is not None:
        app.add_middleware(FeedbackCapture, service=service)
    return service
