"""Typed settings of the audit ledger."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LedgerConfig(BaseModel):
    checkpoint_every: int = Field(1000, ge=1, description="entries between signed checkpoints")
    fsync: bool = Field(
        True, description="fsync after every append (a crash then loses at most the entry being written)"
    )
    signing_key_name: str = Field("ledger", description="keystore name of the key that signs checkpoints")
    document_id_secret: str = Field("document-id", description="keystore secret that keys document-id hashes")
    auth_secret: str = Field(
        "ledger-auth", description="keystore secret behind entry MACs and head records (see deid.ledger.auth)"
    )
    vault_enabled: bool = Field(False, description="keep an encrypted surrogate-to-original vault (re-identification)")
    vault_secret: str = Field(
        "vault", description="keystore secret that keys the vault (never a signing or surrogate key)"
    )
    report_sample_size: int = Field(10, ge=0, le=1000, description="documents in the audit report's spot-check sample")
