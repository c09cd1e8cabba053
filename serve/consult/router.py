"""``POST /v1/consult``: clinicians only, metered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from serve.auth.protocol import Role
from serve.auth.service import Principal, require
from serve.consult.protocol import ConsultRequest, ConsultResponse

ClinicianKey = Annotated[Principal, Depends(require(Role.clinician, metered=True))]


def build_router() -> APIRouter:
    router = APIRouter(tags=["consult"])

    @router.post("/v1/consult", response_model=ConsultResponse)
    async def consult(body: ConsultRequest, request: Request, principal: ClinicianKey) -> ConsultResponse:
        return await request.app.state.services.consult.answer(body, principal, request)

    return router
