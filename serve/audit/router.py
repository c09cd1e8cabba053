"""Auditors read this replica's ledger status and request totals; nothing here returns content."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from deid.egress import installed_guard
from serve.audit.protocol import AuditReport, AuditStatus
from serve.auth.protocol import Role
from serve.auth.service import Principal, require

AuditorKey = Annotated[Principal, Depends(require(Role.auditor))]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/audit", tags=["audit"])

    @router.get("/status", response_model=AuditStatus)
    def status(request: Request, _: AuditorKey) -> AuditStatus:
        services = request.app.state.services
        guard = installed_guard()
        return AuditStatus(
            replica=services.ledger.replica,
            ledger=str(services.ledger.path),
            entries_written=services.ledger.entries_written,
            model_id=services.models.model_id,
            model_sha256=services.models.sha256,
            egress_guard=guard.mode.value if guard else "off",
        )

    @router.get("/report", response_model=AuditReport)
    def report(request: Request, _: AuditorKey) -> AuditReport:
        return request.app.state.services.ledger.report()

    return router
