"""Remember each answered chat and consultation (de-identified) under its response id, for later ratings.

An ASGI middleware rather than a hook in each endpoint: it sees the request body and the
response as the client gets them (whole JSON or server-sent events), so every answering
path is covered the same way and none of them changes. It copies at most ``MAX_CAPTURE``
bytes of each side; the copy is de-identified and stored after the response has gone out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from serve.feedback.service import FeedbackService

log = logging.getLogger("serve.feedback")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CAPTURED = ("/v1/chat/completions", "/v1/consult")
MAX_CAPTURE = 1 << 20


def _text(content: Any) -> str:
    """A message's text: a plain string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def chat_exchange(request: bytes, response: bytes) -> tuple[str, str, str] | None:
    """(response id, last user message, answer) of a chat completion, whole or streamed."""
    body = json.loads(request)
    users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return None
    prompt = _text(users[-1].get("content"))
    if response.lstrip().startswith(b"{"):
        answer_body = json.loads(response)
        choices = answer_body.get("choices") or [{}]
        return str(answer_body.get("id", "")), prompt, _text((choices[0].get("message") or {}).get("content"))
    response_id, parts = "", []
    for line in response.decode("utf-8").splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        response_id = response_id or str(chunk.get("id", ""))
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                parts.append(_text((choice.get("delta") or {}).get("content")))
    return response_id, prompt, "".join(parts)


def consult_exchange(request: bytes, response: bytes) -> tuple[str, str, str] | None:
    body, answer = json.loads(request), json.loads(response)
    prompt = str(body.get("question", ""))
    if body.get("context"):
        prompt = f"{prompt}\n\nContext: {body['context']}"
    return str(answer.get("id", "")), prompt, str(answer.get("answer", ""))


PARSERS = {"/v1/chat/completions": chat_exchange, "/v1/consult": consult_exchange}


class FeedbackCapture:
    def __init__(self, app: ASGIApp, *, service: FeedbackService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope.get("method") != "POST" or path not in PARSERS or not self.service.enabled:
            await self.app(scope, receive, send)
            return
        request, response = bytearray(), bytearray()
        status = 0

        async def tee_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request) <= MAX_CAPTURE:
                request.extend(message.get("body", b""))
            return message

        async def tee_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status == 200 and len(response) <= MAX_CAPTURE:
                response.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, tee_receive, tee_send)
        if status != 200 or len(request) > MAX_CAPTURE or len(response) > MAX_CAPTURE:
            return
        try:
            exchange = PARSERS[str(path)](bytes(request), bytes(response))
            if exchange is not None and exchange[0]:
                await run_in_threadpool(self.service.remember, exchange[0], str(path), exchange[1], exchange[2])
        except Exception as error:  # noqa: BLE001 - the answer has gone out; a failed copy must not surface
            log.warning("feedback: could not keep an exchange for rating: %s", type(error).__name__)
