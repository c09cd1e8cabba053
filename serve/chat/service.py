"""Chat completions on top of the shared inference path: OpenAI response and SSE chunk shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from serve.auth.service import Principal
from serve.chat.protocol import (
    AssistantMessage,
    CalledFunction,
    CalledFunctionDelta,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    NamedToolChoice,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    Usage,
)
from serve.config import ServeConfig
from serve.engine.grammar import (
    SchemaError,
    json_object_grammar,
    schema_grammar,
    tool_call_grammar,
)
from serve.engine.llama_model import LoadedModel
from serve.engine.sampling import GrammarError, SamplingParams, check_grammar
from serve.engine.scheduler import Generation
from serve.errors import InvalidRequestError
from serve.grounding import GroundedPrompt, Grounding, with_notice
from serve.inference import InferenceService, Prepared, stream_error

ENDPOINT = "/v1/chat/completions"
TOOLS_INSTRUCTIONS = (
    "You can call the functions listed below. To call one, answer with only a JSON object "
    '{"name": <function name>, "arguments": <arguments object>} and nothing else.'
)


@dataclass(frozen=True)
class Shape:
    """What the answer is constrained to: a grammar, and whether it may be (or must be) a tool call."""

    grammar: str | None = None
    tool_calls: bool = False


def chosen_tools(body: ChatCompletionRequest) -> list[ToolDefinition]:
    """The tools the model may call under ``tool_choice`` (none for "none" or no tools)."""
    if not body.tools or body.tool_choice == "none":
        return []
    if isinstance(body.tool_choice, NamedToolChoice):
        wanted = body.tool_choice.function.name
        named = [tool for tool in body.tools if tool.function.name == wanted]
        if not named:
            raise InvalidRequestError("tool_choice names a function that is not in tools", param="tool_choice")
        return named
    return body.tools


def answer_shape(body: ChatCompletionRequest) -> Shape:
    """The grammar that enforces ``response_format`` or ``tools``; refuses what cannot be enforced."""
    field = body.unsupported()
    if field is not None:
        raise InvalidRequestError(f"{field} is not supported by this server; leave it out", param=field)
    tools = chosen_tools(body)
    wants_format = body.response_format is not None and body.response_format.type != "text"
    if tools and wants_format:
        raise InvalidRequestError("response_format cannot be combined with tools", param="response_format")
    if tools:
        if len({tool.function.name for tool in body.tools or []}) != len(body.tools or []):
            raise InvalidRequestError("tools must have distinct function names", param="tools")
        try:
            grammar = tool_call_grammar(
                [(tool.function.name, tool.function.parameters) for tool in tools],
                allow_prose=body.tool_choice in (None, "auto"),
            )
        except SchemaError as error:
            raise InvalidRequestError(str(error), param="tools") from None
        return Shape(grammar, tool_calls=True)
    if not wants_format:
        return Shape()
    assert body.response_format is not None
    if body.response_format.type == "json_object":
        return Shape(json_object_grammar())
    assert body.response_format.json_schema is not None
    try:
        return Shape(schema_grammar(body.response_format.json_schema.schema_))
    except SchemaError as error:
        raise InvalidRequestError(str(error), param="response_format") from None


def tools_message(tools: list[ToolDefinition]) -> str:
    listed = [tool.function.model_dump(exclude_none=True, exclude={"strict"}) for tool in tools]
    return f"{TOOLS_INSTRUCTIONS}\n\n{json.dumps(listed, indent=1)}"


def with_tools(messages: list[dict[str, str]], tools: list[ToolDefinition]) -> list[dict[str, str]]:
    """The tool list in the system message (the screened prompt, so PHI screening sees it too)."""
    if not tools:
        return messages
    block = tools_message(tools)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{block}"}, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]


def parse_call(text: str) -> ToolCall | None:
    """The call the grammar made the model write; None for prose or a call cut short by max_tokens."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        call = json.loads(text)
    except ValueError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    return ToolCall(
        id=f"call_{uuid.uuid4().hex[:24]}",
        function=CalledFunction(name=call["name"], arguments=json.dumps(call.get("arguments", {}))),
    )


class ChatService:
    def __init__(self, config: ServeConfig, inference: InferenceService, grounding: Grounding | None) -> None:
        self.config = config
        self.inference = inference
        self.grounding = grounding

    async def prepare(
        self, body: ChatCompletionRequest, principal: Principal
    ) -> tuple[Prepared, GroundedPrompt, Shape]:
        """The request admitted, with its grounding (no citations and no notice when not grounded)."""
        shape = answer_shape(body)
        if shape.grammar is not None and self.inference.models.upstream:
            field = "tools" if shape.tool_calls else "response_format"
            raise InvalidRequestError(
                f"{field} is enforced by this appliance's own engine; it is not available with an upstream engine",
                param=field,
            )
        if shape.grammar is not None:
            try:
                model = self.inference.models.engine.model
                assert isinstance(model, LoadedModel)  # an upstream engine was refused above
                check_grammar(model.vocab, shape.grammar)
            except GrammarError as error:
                raise InvalidRequestError(f"{error}; simplify the schema", param="response_format") from None
        messages = [message.plain() for message in body.messages]
        grounded = GroundedPrompt(messages=messages)
        if body.grounded and self.grounding is not None:
            question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            grounded = await run_in_threadpool(self.grounding.ground, question, messages)
        default_tokens = min(self.config.default_max_tokens, self.config.max_tokens_limit)
        params = SamplingParams(
            max_tokens=body.max_completion_tokens or body.max_tokens or default_tokens,
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            seed=body.seed,
            stop=body.stops(),
            grammar=shape.grammar,
        )
        prompt = with_tools(grounded.messages, chosen_tools(body) if shape.tool_calls else [])
        prepared = await self.inference.prepare(principal, ENDPOINT, prompt, params, body.model, "chatcmpl")
        return prepared, grounded, shape

    async def complete(
        self, prepared: Prepared, grounded: GroundedPrompt, shape: Shape, request: Request
    ) -> ChatCompletion:
        outcome = await self.inference.complete(prepared, request)
        call = parse_call(outcome.text) if shape.tool_calls else None
        if call is not None:
            message = AssistantMessage(content=None, tool_calls=[call])
            finish = "tool_calls"
        else:
            message = AssistantMessage(content=with_notice(outcome.text, grounded.notice))
            finish = outcome.finish_reason
        return ChatCompletion(
            id=prepared.request_id,
            created=prepared.created,
            model=prepared.model_id,
            choices=[Choice(message=message, finish_reason=finish)],
            usage=Usage.of(outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens),
            citations=grounded.citations or None,
        )

    async def sse(
        self,
        prepared: Prepared,
        generation: Generation,
        include_usage: bool,
        request: Request,
        grounded: GroundedPrompt,
        shape: Shape,
    ) -> AsyncIterator[bytes]:
        """Server-sent events exactly as OpenAI sends them, ending with ``data: [DONE]``.

        Grounded streams carry the citations on the first chunk (an extension field OpenAI clients
        ignore) and start the text with the nothing-relevant notice when there is one. When the
        answer may be a tool call, its first character decides: ``{`` starts a call, which is held
        back and sent whole once it parses (as one ``tool_calls`` delta); anything else streams.
        """

        def chunk(
            delta: Delta, finish: str | None = None, usage: Usage | None = None, citations: list | None = None
        ) -> bytes:
            body = ChatCompletionChunk(
                id=prepared.request_id,
                created=prepared.created,
                model=prepared.model_id,
                choices=[] if usage else [ChunkChoice(delta=delta, finish_reason=finish)],
                usage=usage,
                citations=citations,
            )
            return b"data: " + body.model_dump_json(exclude_none=not usage).encode() + b"\n\n"

        opening = f"{grounded.notice}\n\n" if grounded.notice else ""
        yield chunk(Delta(role="assistant", content=opening), citations=grounded.citations or None)
        held: list[str] | None = [] if shape.tool_calls else None
        async with aclosing(self.inference.stream(prepared, generation, request)) as events:
            async for event in events:
                if event.finish_reason is not None and event.finish_reason not in ("stop", "length"):
                    yield stream_error(event.finish_reason)
                    break
                text, finish = event.text, event.finish_reason
                if held is not None:
                    held.append(text)
                    text = "".join(held)
                    if finish is None and (not text or text.startswith("{")):
                        continue
                    held = None
                    call = parse_call(text) if finish is not None else None
                    if call is not None:
                        yield chunk(Delta(tool_calls=[ToolCallDelta(
                            id=call.id, type="function", function=CalledFunctionDelta(name=call.function.name, arguments=""),
                        )]))
                        yield chunk(Delta(tool_calls=[ToolCallDelta(
                            function=CalledFunctionDelta(arguments=call.function.arguments),
                        )]))
                        text, finish = "", "tool_calls"
                if text:
                    yield chunk(Delta(content=text))
                if finish is None:
                    continue
                yield chunk(Delta(), finish)
                if include_usage:
                    yield chunk(Delta(), usage=Usage.of(event.prompt_tokens, event.completion_tokens,
                                                        event.cached_tokens))
        yield b"data: [DONE]\n\n"
