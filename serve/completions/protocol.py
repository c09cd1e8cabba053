"""OpenAI's legacy completion schema, the part this server implements.

A prompt is one string or one list of token ids (a batch of prompts would be ``n`` answers in
one request, which is refused like ``n > 1``). Fields that would change the answer and are not
implemented are refused by name, never ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve.chat.protocol import StopSequences, StreamOptions, Usage, first_unsupported

UNSUPPORTED_COMPLETION_FIELDS = (
    "suffix", "logprobs", "logit_bias", "presence_penalty", "frequency_penalty",
)
Prompt = Annotated[str, Field(max_length=200_000)]
TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=65_536)]


class CompletionRequest(StopSequences):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., min_length=1, max_length=256)
    prompt: Prompt | TokenIds | list[Prompt] | list[TokenIds]
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False
    n: int | None = Field(1, ge=1, le=1, description="Only one choice per request is supported")
    best_of: int | None = Field(None, ge=1, le=1, description="Only one candidate per request is supported")
    user: str | None = Field(None, max_length=256)
    suffix: str | None = None
    logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def unsupported(self) -> str | None:
        return first_unsupported(self, UNSUPPORTED_COMPLETION_FIELDS, neutral={"suffix": ""})

    def single_prompt(self) -> str | list[int] | None:
        """The one prompt, or None when the request holds several (or none)."""
        prompt: Any = self.prompt
        if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
            return prompt
        return prompt[0] if len(prompt) == 1 else None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
