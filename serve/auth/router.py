"""Key administration over HTTP, for admins (the CLI does the same on the server itself)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from deid.errors import InputError
from serve.auth.protocol import CreatedKey, CreateKeyRequest, KeyInfo, KeyList, Role
from serve.auth.service import Principal, require
from serve.errors import NotFoundError

AdminKey = Annotated[Principal, Depends(require(Role.admin))]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin/keys", tags=["admin"])

    @router.get("", response_model=KeyList)
    def list_keys(request: Request, _: AdminKey) -> KeyList:
        return KeyList(data=request.app.state.services.auth.store.list())

    @router.post("", response_model=CreatedKey, status_code=201)
    def create_key(body: CreateKeyRequest, request: Request, admin: AdminKey) -> CreatedKey:
        services = request.app.state.services
        key, info = services.auth.store.create(body.role, body.label)
        services.ledger.record_admin("key.create", admin.key_id, key_id=info.key_id, role=info.role.value)
        return CreatedKey(key=key, info=info)

    @router.delete("/{key_id}", response_model=KeyInfo)
    def revoke_key(key_id: str, request: Request, admin: AdminKey) -> KeyInfo:
        services = request.app.state.services
        try:
            info: KeyInfo = services.auth.store.revoke(key_id)
        except InputError as error:
            raise NotFoundError(str(error), param="key_id") from None
        services.ledger.record_admin("key.revoke", admin.key_id, key_id=info.key_id, role=info.role.value)
        return info

    return router
