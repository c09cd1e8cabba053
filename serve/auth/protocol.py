"""Roles and the key records the admin endpoints and the CLI show (never the secret or its hash)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Role(StrEnum):
    """Who may call what: clinicians ask, auditors read the trail, admins run the service."""

    clinician = "clinician"
    auditor = "auditor"
    admin = "admin"


class KeyInfo(BaseModel):
    key_id: str
    role: Role
    label: str = ""
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class CreateKeyRequest(BaseModel):
    role: Role
    label: str = Field("", max_length=80, description="A note for administrators, e.g. the ward or tool")


class CreatedKey(BaseModel):
    """The only response that ever carries a secret: shown once, stored hashed."""

    key: str
    info: KeyInfo


class KeyList(BaseModel):
    object: str = "list"
    data: list[KeyInfo]
