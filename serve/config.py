"""Typed settings of the consultation API."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class ServeConfig(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address; loopback unless an operator opens it up")
    port: int = Field(8080, ge=1, le=65535)
    model: Path | None = Field(None, description="Quantized GGUF to serve; None = the embedded model")
    adapter: Path | None = Field(None, description="Optional LoRA adapter GGUF applied on top of the model")
    model_name: str | None = Field(None, description="Model id clients send; None = the GGUF file's stem")
    context_length: int = Field(2048, ge=128, description="Tokens of context per concurrent sequence")
    threads: int | None = Field(None, ge=1, description="llama.cpp threads; None = all cores")
    parallel: int = Field(8, ge=1, le=64, description="Sequences decoded together in one forward pass")
    batch_tokens: int = Field(512, ge=32, description="Most tokens per forward pass (prompt chunks + decodes)")
    queue_size: int = Field(32, ge=0, description="Requests waiting for a free sequence slot before 429")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest accepted request body")
    max_prompt_tokens: int = Field(1536, ge=16, description="Longest accepted prompt after templating")
    max_tokens_limit: int = Field(1024, ge=1, description="Largest max_tokens a request may ask for")
    default_max_tokens: int = Field(256, ge=1, description="max_tokens when a request gives none")
    rate_limit_per_minute: int = Field(120, ge=0, description="Requests per API key per minute; 0 = unlimited")
    retry_after_s: int = Field(2, ge=1, description="Retry-After sent with 429 when the queue is full")
    refusal_window_seconds: float = Field(
        60.0, gt=0, description="Refused requests of one kind after the first in this window are counted, not each written"
    )
    cors_origins: list[str] = Field(default_factory=list, description="Allowed browser origins; empty = CORS off")
    tls_cert: Path | None = Field(None, description="PEM certificate; with tls_key the API speaks HTTPS only")
    tls_key: Path | None = None
    detect_phi: bool = Field(True, description="Record the PHI types found in prompts (types only) in the ledger")
    redact_phi: bool = Field(False, description="Replace PHI in prompts with [TYPE] tags before the model sees them")
    knowledge: bool = Field(True, description="Ground /v1/consult in the knowledge base when one is built")
    feedback: bool = Field(
        True, description="Keep each answer de-identified under its response id so clinicians can rate it "
        "(POST /v1/feedback); off = nothing kept and /v1/feedback answers 404",
    )
    feedback_max_answers: int = Field(10_000, ge=1, description="Newest answers (and ratings) kept for feedback")
