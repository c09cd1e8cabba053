"""Who is calling, may they call this, and have they used up their budget."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import KeyInfo, Role
from serve.errors import AuthenticationError, PermissionDeniedError, RateLimitError


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role


class RateLimiter:
    """A token bucket per key: short bursts are fine, a sustained flood gets 429 + Retry-After."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def charge(self, key_id: str) -> None:
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - stamp) * rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / rate))
                raise RateLimitError(
                    "rate limit for this API key exceeded; retry after the delay in Retry-After",
                    headers={"Retry-After": str(wait)},
                )
            self._buckets[key_id] = (tokens - 1.0, now)


class Authenticator:
    def __init__(self, store: ApiKeyStore, limiter: RateLimiter) -> None:
        self.store = store
        self.limiter = limiter

    def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
            )
        info: KeyInfo | None = self.store.verify(token.strip())
        if info is None:
            raise AuthenticationError("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return Principal(info.key_id, info.role)

    def still_active(self, principal: Principal) -> bool:
        """For requests that outlive their check at the door (a long stream): is the key still good?"""
        return self.store.is_active(principal.key_id)


def require(*roles: Role, metered: bool = False) -> Callable[[Request], Principal]:
    """A FastAPI dependency admitting only keys of ``roles``; metered ones count against the rate limit.

    A refusal raised here reaches the error handlers, which record it in the ledger (the key id
    of a key that did verify is on ``request.state.principal``; the presented key never is).
    """

    def dependency(request: Request) -> Principal:
        auth: Authenticator = request.app.state.services.auth
        principal = auth.authenticate(request.headers.get("authorization"))
        request.state.principal = principal
        if principal.role not in roles:
            allowed = ", ".join(role.value for role in roles)
            raise PermissionDeniedError(f"this endpoint needs a key with role {allowed}; yours is {principal.role.value}")
        if metered:
            auth.limiter.charge(principal.key_id)
        return principal

    return dependency
