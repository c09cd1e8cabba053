"""The batch engine's interface over an OpenAI-compatible engine on loopback.

Requests reach it already screened (PHI types recorded, redacted when configured) and leave
it as the same ``GenerationEvent`` stream the local engine produces, so keys, roles, limits,
the ledger, metrics and grounding stay in the appliance. The engine streams every request
(with usage), so a client that hangs up closes the upstream stream and frees its slot there.
Upstream error bodies are never passed on or logged: they may quote the prompt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from serve.config import ServeConfig
from serve.engine.sampling import SamplingParams
from serve.engine.scheduler import (
    EngineBusyError,
    EngineStoppedError,
    Generation,
    GenerationEvent,
)
from serve.upstream.supervisor import EngineSupervisor

log = logging.getLogger("serve.upstream")


@dataclass(frozen=True)
class UpstreamModel:
    """What the rest of the API reads off ``engine.model`` (no tokenizer: the engine has its own)."""

    model_id: str
    sha256: str
    adapter_sha256: str | None = None


class UpstreamEngine:
    def __init__(self, config: ServeConfig, supervisor: EngineSupervisor | None) -> None:
        assert config.upstream_model is not None
        self.config = config
        self.supervisor = supervisor
        self.model = UpstreamModel(config.model_name or config.upstream_model, config.upstream_model_sha256 or "")
        self.context_length = config.context_length
        self.base_url = config.upstream_url.rstrip("/")
        key = config.upstream_api_key
        self.headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        self._limit = config.parallel + config.queue_size
        self._in_flight = 0
        self._stopping = False

    @property
    def queue_depth(self) -> int:
        return max(0, self._in_flight - self.config.parallel)

    @property
    def active(self) -> int:
        return min(self._in_flight, self.config.parallel)

    def submit(self, body: dict[str, Any], params: SamplingParams) -> Generation:
        """``body`` holds ``messages`` (chat) or ``prompt`` (completion), already screened."""
        if self._stopping:
            raise EngineStoppedError("the engine is being stopped; retry shortly")
        if self._in_flight >= self._limit:
            raise EngineBusyError("the server is at capacity; retry after the delay in Retry-After")
        generation = Generation([], params, asyncio.get_running_loop())
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._relay(generation, body, params))
        task.add_done_callback(lambda _: self._done())
        return generation

    def _done(self) -> None:
        self._in_flight -= 1

    def close(self, drain_seconds: float = 0.0) -> None:
        self._stopping = True
        deadline = time.monotonic() + drain_seconds
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    def payload(self, body: dict[str, Any], params: SamplingParams) -> dict[str, Any]:
        payload: dict[str, Any] = {
            **body,
            "model": self.config.upstream_model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        return payload

    async def _relay(self, generation: Generation, body: dict[str, Any], params: SamplingParams) -> None:
        chat = "messages" in body
        url = f"{self.base_url}/v1/chat/completions" if chat else f"{self.base_url}/v1/completions"
        started = time.perf_counter()
        finish: str | None = None
        usage: dict[str, int] = {}
        try:
            timeout = httpx.Timeout(self.config.upstream_request_timeout_s, connect=10.0)
            async with httpx.AsyncClient(timeout=timeout) as client, client.stream(
                "POST", url, json=self.payload(body, params), headers=self.headers
            ) as response:
                if response.status_code != 200:
                    log.warning("upstream engine answered status %d", response.status_code)
                    finish = "error"
                else:
                    finish, usage = await self._read(response, generation, chat)
        except httpx.HTTPError as error:
            log.warning("upstream engine unreachable: %s", type(error).__name__)
            finish = "error"
        if generation.cancelled:
            finish = "cancelled"
        generation.publish(GenerationEvent(
            "",
            finish or "error",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", generation.generated),
            decode_seconds=time.perf_counter() - started,
        ))

    async def _read(
        self, response: httpx.Response, generation: Generation, chat: bool
    ) -> tuple[str | None, dict[str, int]]:
        """Forward text deltas; returns the finish reason and the usage the engine reported."""
        finish: str | None = None
        usage: dict[str, int] = {}
        async for line in response.aiter_lines():
            if generation.cancelled:
                return "cancelled", usage
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                return "error", usage
            if not isinstance(chunk, dict) or "error" in chunk:
                return "error", usage
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                if text:
                    generation.generated += 1
                    generation.publish(GenerationEvent(text))
                finish = choice.get("finish_reason") or finish
        return (finish if finish in ("stop", "length") else "error"), usage
