"""The ledger entry each API request adds, and what auditors read back. No text fields, by design."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RequestRecord(BaseModel):
    """Counts, ids and types only: a prompt or an answer has no field to land in."""

    request_id: str
    endpoint: str
    key_id: str = Field(description="the calling key's id; 'none' when no valid key was presented")
    role: str = Field(description="the key's role; 'none' when no valid key was presented")
    model_sha256: str | None = Field(None, description="absent for a request refused before any model was involved")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    phi_types: list[str] = Field(default_factory=list)
    latency_ms: int = 0
    status: int = 200
    reason: str | None = Field(
        None, description="How generation ended (stop, length, cancelled, ...) or why it was refused (unauthenticated, forbidden, rate_limited)"
    )
    adapter_sha256: str | None = None


class AuditStatus(BaseModel):
    replica: str
    ledger: str
    entries_written: int
    model_id: str
    model_sha256: str
    egress_guard: str


class AuditReport(BaseModel):
    """Totals for this replica since it started; the ledger file holds the full, signed history."""

    replica: str
    requests: int
    by_endpoint: dict[str, int]
    by_status: dict[str, int]
    by_role: dict[str, int]
    phi_types: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
