"""The subset of OpenAI's chat completion schema this server implements, field for field.

Unknown fields are ignored (as OpenAI-compatible servers commonly do) so that clients built for
the OpenAI API work unchanged; known fields that would change the answer and that this server
cannot honour (n > 1, logit_bias, logprobs, penalties, audio, ...) are refused with a 400 that
names them, never silently dropped. ``response_format`` (JSON or a JSON schema) and ``tools``
are enforced by grammar-constrained decoding.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Text = Annotated[str, Field(max_length=200_000)]
FunctionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class CalledFunction(BaseModel):
    name: FunctionName
    arguments: Text


class ToolCall(BaseModel):
    id: str = Field(..., max_length=128)
    type: Literal["function"] = "function"
    function: CalledFunction


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None
    name: str | None = Field(None, max_length=64)
    tool_calls: list[ToolCall] | None = Field(None, max_length=16)
    tool_call_id: str | None = Field(None, max_length=128)

    @model_validator(mode="after")
    def _content_or_calls(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (only an assistant message with tool_calls may omit it)")
        return self

    def plain(self) -> dict[str, str]:
        """Role and text as the chat template takes them; earlier tool calls are written as the
        JSON the model was constrained to produce, so it sees its own convention again."""
        if self.content is None:
            content = ""
        else:
            content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        if self.tool_calls:
            calls = "\n".join(
                json.dumps({"name": c.function.name, "arguments": _arguments(c.function.arguments)})
                for c in self.tool_calls
            )
            content = f"{content}\n{calls}" if content else calls
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": content}


def _arguments(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


class FunctionDefinition(BaseModel):
    name: FunctionName
    description: str | None = Field(None, max_length=4096)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(BaseModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    name: FunctionName


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    name: str = Field(..., max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a json_schema object")
        return self


class StreamOptions(BaseModel):
    include_usage: bool = False


# Fields that change what comes back. Each is accepted only at its neutral value (None, 0,
# empty, ...), otherwise the request is refused naming the field.
UNSUPPORTED_CHAT_FIELDS = (
    "logit_bias", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "functions",
    "function_call", "audio", "prediction", "web_search_options", "reasoning_effort", "modalities",
)


class StopSequences(BaseModel):
    """``stop`` as OpenAI takes it (one string or up to four), shared by chat and text completions."""

    stop: str | list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        if isinstance(value, str) and not 1 <= len(value) <= 64:
            raise ValueError("a stop sequence has 1 to 64 characters")
        return value

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionRequest(StopSequences):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=256)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(1, ge=1, le=1, description="Only one choice per request is supported")
    user: str | None = Field(None, max_length=256)
    response_format: ResponseFormat | None = None
    tools: list[ToolDefinition] | None = Field(None, max_length=64)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    grounded: bool = Field(False, description="Appliance extension: ground the answer in the knowledge base")
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    modalities: list[str] | None = None

    def unsupported(self) -> str | None:
        """The first field set to a value this server would have to ignore, else None."""
        return first_unsupported(self, UNSUPPORTED_CHAT_FIELDS, neutral={"modalities": ["text"]})


def first_unsupported(body: BaseModel, fields: tuple[str, ...], neutral: dict[str, object]) -> str | None:
    for name in fields:
        value = getattr(body, name)
        if is_set(value) and value != neutral.get(name):
            return name
    return None


def is_set(value: object) -> bool:
    """Whether a field holds anything but its neutral value (None, False, 0, empty)."""
    return value is not None and value is not False and value != 0 and value != {} and value != []


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0  # leading prompt tokens reused from earlier work, not computed again


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens,
                   prompt_tokens_details=PromptTokensDetails(cached_tokens=cached_tokens))


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None


FinishReason = Literal["stop", "length", "tool_calls"]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[dict[str, Any]] | None = None  # Any: the field `object` shadows the builtin here


class CalledFunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    index: int = 0
    id: str | None = None
    type: Literal["function"] | None = None
    function: CalledFunctionDelta


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: list[dict[str, Any]] | None = None  # Any: the field `object` shadows the builtin here
