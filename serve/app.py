"""``create_app(context)``: the whole API wired from one :class:`ServeContext`, no module state.

Everything a request needs hangs off ``app.state.services``; routers reach it through the
request, so two apps in one process (tests, a blue/green reload) never share anything but the
process-wide egress guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from deid.egress import go_offline
from deid.errors import ApplianceError, ConfigError
from serve.audit.router import build_router as audit_router
from serve.audit.service import RequestLedger, refusal_recorder
from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role
from serve.auth.router import build_router as keys_router
from serve.auth.service import Authenticator, Principal, RateLimiter, require
from serve.chat.router import build_router as chat_router
from serve.chat.service import ChatService
from serve.completions.router import build_router as completions_router
from serve.completions.service import CompletionService
from serve.consult.router import build_router as consult_router
from serve.consult.service import ConsultService
from serve.context import ServeContext
from serve.embeddings.router import build_router as embeddings_router
from serve.embeddings.service import EmbeddingService
from serve.engine.gguf_file import check_gguf_file
from serve.errors import install_error_handlers
from serve.feedback.router import mount_feedback
from serve.grounding import Grounding
from serve.health.router import build_router as health_router
from serve.inference import InferenceService
from serve.knowledge.router import mount_knowledge
from serve.metrics import ApiMetrics
from serve.middleware import BodyLimit, Observe
from serve.models.router import build_router as models_router
from serve.models.service import ModelService
from serve.privacy.service import PromptPrivacy, build_detector
from serve.web.router import mount as mount_web

log = logging.getLogger("serve")


@dataclass
class Services:
    context: ServeContext
    models: ModelService
    auth: Authenticator
    ledger: RequestLedger
    metrics: ApiMetrics
    privacy: PromptPrivacy
    inference: InferenceService
    chat: ChatService
    consult: ConsultService
    completions: CompletionService
    embeddings: EmbeddingService
    grounding: Grounding | None = None
    knowledge_failure: str | None = None


def create_app(context: ServeContext) -> FastAPI:
    config = context.config
    go_offline()
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("serve.tls_cert and serve.tls_key must be given together")
    check_gguf_file(context.model_path)
    if config.adapter is not None:
        check_gguf_file(config.adapter)
    metrics = ApiMetrics()
    models = ModelService(config, context.model_path, config.adapter)
    ledger = RequestLedger(context.ledger)
    privacy = PromptPrivacy(None, redact_prompts=False)
    auth = Authenticator(ApiKeyStore(context.api_keys_file), RateLimiter(config.rate_limit_per_minute))
    inference = InferenceService(config, models, privacy, ledger, metrics, auth)
    grounding = context.grounding
    services = Services(
        context=context,
        models=models,
        auth=auth,
        ledger=ledger,
        metrics=metrics,
        privacy=privacy,
        inference=inference,
        chat=ChatService(config, inference, grounding),
        consult=ConsultService(config, inference, grounding),
        completions=CompletionService(config, inference),
        embeddings=EmbeddingService(context.embedder, lambda: inference.privacy, ledger),
        grounding=grounding,
    )

    def warm_up() -> None:
        """Slow loads (model, NLP pipeline) happen after the socket is open; /readyz says when done."""
        if config.detect_phi:
            inference.privacy = PromptPrivacy(build_detector(context.deid), redact_prompts=config.redact_phi)
        models.load()

    def record_model_failure(reason: str) -> None:
        models.load_failure = reason

    def record_knowledge_failure(reason: str) -> None:
        services.knowledge_failure = reason

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ledger.open)
        loading = [asyncio.create_task(run_in_threadpool(warm_up))]
        loading[0].add_done_callback(_load_failure_handler("model", record_model_failure))
        if grounding is not None:
            # In parallel with the model: the knowledge index and embedder take 9-50 s to load,
            # which the first grounded consultation would otherwise pay.
            loading.append(asyncio.create_task(run_in_threadpool(grounding.warm)))
            loading[1].add_done_callback(_load_failure_handler("knowledge", record_knowledge_failure))
        try:
            yield
        finally:
            for task in loading:
                task.cancel()
            await run_in_threadpool(models.close)
            await run_in_threadpool(ledger.close)
            if grounding is not None:
                grounding.close()

    app = FastAPI(
        title="Medical appliance consultation API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a key: the schema maps the attack surface
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app, on_refused=refusal_recorder(ledger))
    for build in (health_router, models_router, chat_router, completions_router, embeddings_router, consult_router,
                  audit_router, keys_router):
        app.include_router(build())
    mount_knowledge(app, grounding)
    mount_feedback(app, config, context.feedback_home, ledger, lambda: inference.privacy)
    _mount_openapi(app)
    mount_web(app)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(Observe, metrics=metrics)
    return app


def _mount_openapi(app: FastAPI) -> None:
    any_key = Depends(require(Role.clinician, Role.auditor, Role.admin))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Principal = any_key) -> JSONResponse:
        return JSONResponse(app.openapi())


def _load_failure_handler(what: str, record_reason: Callable[[str], None]) -> Callable[[asyncio.Task[None]], None]:
    def record(task: asyncio.Task[None]) -> None:
        """A failed load keeps /readyz at 503 with the reason; ApplianceError messages carry no content."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        reason = str(error) if isinstance(error, ApplianceError) else type(error).__name__
        record_reason(reason)
        log.error("%s loading failed: %s", what, reason)

    return record
