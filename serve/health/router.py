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
        """Ready only when the model AND, if a knowledge base is configured, its index are loaded.

        A load balancer should not send a replica consultations it would answer 9-50 s late (or
        not at all), so knowledge counts towards readiness rather than being a side note;
        ``knowledge`` still says which part is pending: ``loading``, ``ready``, ``failed`` or
        ``off`` (no knowledge base, answers are not grounded).
        """
        services = request.app.state.services
        models, grounding = services.models, services.grounding
        if grounding is None:
            knowledge = "off"
        elif services.knowledge_failure is not None:
            knowledge = "failed"
        else:
            knowledge = "ready" if grounding.ready else "loading"
        if models.load_failure is not None:
            return JSONResponse(
                {"status": "failed", "reason": models.load_failure, "knowledge": knowledge}, status_code=503
            )
        if knowledge == "failed":
            return JSONResponse(
                {"status": "failed", "reason": services.knowledge_failure, "knowledge": knowledge}, status_code=503
            )
        if not models.ready or knowledge == "loading":
            body = {"status": "loading", "model_loaded": models.ready, "knowledge": knowledge}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "model": models.model_id, "knowledge": knowledge})

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        services = request.app.state.services
        engine = services.models.engine if services.models.ready else None
        body = services.metrics.render(engine.queue_depth if engine else 0, engine.active if engine else 0)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
