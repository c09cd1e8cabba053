"""Probes for load balancers and orchestrators, and the metrics scrape; no key needed, no content shown."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST


def build_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        models = request.app.state.services.models
        if models.load_failure is not None:
            return JSONResponse({"status": "failed", "reason": models.load_failure}, status_code=503)
        if not models.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model": models.model_id})

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        services = request.app.state.services
        engine = services.models.engine if services.models.ready else None
        body = services.metrics.render(engine.queue_depth if engine else 0, engine.active if engine else 0)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
