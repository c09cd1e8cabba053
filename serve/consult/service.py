"""Consultation: frame the question for the model, ground it when a knowledge base exists."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from serve.auth.service import Principal
from serve.config import ServeConfig
from serve.consult.protocol import ConsultRequest, ConsultResponse, ConsultUsage
from serve.engine.sampling import SamplingParams
from serve.grounding import Grounding, with_notice
from serve.inference import InferenceService
from serve.knowledge.protocol import Citation

ENDPOINT = "/v1/consult"
SYSTEM_PROMPT = (
    "You are a clinical decision-support assistant for licensed clinicians. Answer concisely and "
    "accurately, state uncertainty, and recommend escalation when findings are serious."
)


def consult_messages(question: str, context: str | None) -> list[dict[str, str]]:
    user = question if not context else f"Clinical context:\n{context}\n\nQuestion:\n{question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class ConsultService:
    def __init__(self, config: ServeConfig, inference: InferenceService, grounding: Grounding | None) -> None:
        self.config = config
        self.inference = inference
        self.grounding = grounding

    async def answer(self, body: ConsultRequest, principal: Principal, request: Request) -> ConsultResponse:
        messages = consult_messages(body.question, body.context)
        citations: list[dict[str, object]] = []
        notice: str | None = None
        if self.grounding is not None:
            grounded = await run_in_threadpool(self.grounding.ground, body.question, messages)
            messages, citations, notice = grounded.messages, grounded.citations, grounded.notice
        params = SamplingParams(
            max_tokens=body.max_tokens or min(self.config.default_max_tokens, self.config.max_tokens_limit),
            temperature=body.temperature,
            seed=body.seed,
        )
        prepared = await self.inference.prepare(principal, ENDPOINT, messages, params, None, "consult")
        outcome = await self.inference.complete(prepared, request)
        return ConsultResponse(
            id=prepared.request_id,
            created=prepared.created,
            model=prepared.model_id,
            answer=with_notice(outcome.text.strip(), notice),
            finish_reason=outcome.finish_reason,
            grounding="off" if self.grounding is None else ("cited" if citations else "none"),
            citations=[Citation.model_validate(item) for item in citations],
            usage=ConsultUsage(
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
            ),
        )
