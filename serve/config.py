"""Typed settings of the consultation API."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

from deid.egress import is_loopback


class FlashAttention(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


class EngineKind(StrEnum):
    """Who generates: llama.cpp in this process, or an OpenAI-compatible engine on loopback."""

    local = "local"
    upstream = "upstream"


class KvCacheType(StrEnum):
    """Element type of the KV cache; q8_0 halves its memory at a small accuracy cost."""

    f16 = "f16"
    q8_0 = "q8_0"
    q4_0 = "q4_0"


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
    prompt_cache_mib: int = Field(
        256, ge=0,
        description="Host memory for KV states of earlier requests, reused by the same API key's prompts that start "
        "the same way (follow-ups, retries); 0 = off",
    )
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
    gpu_layers: int | None = Field(
        None, ge=-1, description="Layers offloaded to GPUs; None = all when llama.cpp has a GPU backend, else 0; -1 = all"
    )
    main_gpu: int = Field(0, ge=0, description="GPU holding the whole model (no split) or the small tensors (split)")
    tensor_split: list[float] = Field(
        default_factory=list, description="Share of the model per GPU, e.g. [3, 1]; empty = llama.cpp's default"
    )
    flash_attention: FlashAttention = Field(FlashAttention.auto, description="Fused attention kernels; auto = where supported")
    kv_cache_type: KvCacheType = Field(KvCacheType.f16, description="KV-cache element type (keys and values)")
    engine: EngineKind = Field(EngineKind.local, description="local = llama.cpp here; upstream = the engine at upstream_url")
    upstream_url: str = Field("http://127.0.0.1:8081", description="Base URL of the upstream engine; loopback only")
    upstream_model: str | None = Field(None, max_length=256, description="Model id the upstream engine serves (required)")
    upstream_model_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Digest of the upstream weights, for the ledger (optional)"
    )
    upstream_api_key: SecretStr | None = Field(None, description="Bearer key the upstream engine expects, if any")
    upstream_command: list[str] = Field(
        default_factory=list, description="Command that starts the engine; empty = it is run by someone else"
    )
    upstream_health_path: str = Field("/health", description="GET path that answers 200 once the engine can serve")
    upstream_start_timeout_s: float = Field(600.0, gt=0, description="How long a (re)started engine may take to load")
    upstream_request_timeout_s: float = Field(600.0, gt=0, description="Longest a generation may take upstream")

    @model_validator(mode="after")
    def _upstream_is_named_and_local(self) -> ServeConfig:
        if self.engine != EngineKind.upstream:
            return self
        if not self.upstream_model:
            raise ValueError("serve.engine = upstream needs serve.upstream_model (the id the engine serves)")
        parts = urlsplit(self.upstream_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not is_loopback(parts.hostname):
            raise ValueError("serve.upstream_url must be an http(s) URL on loopback (the appliance never leaves the host)")
        return self

    @model_validator(mode="after")
    def _quantized_cache_needs_flash_attention(self) -> ServeConfig:
        if self.kv_cache_type != KvCacheType.f16 and self.flash_attention == FlashAttention.off:
            raise ValueError("a quantized serve.kv_cache_type needs serve.flash_attention auto or on (llama.cpp)")
        return self
