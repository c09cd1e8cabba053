"""OpenAI-shaped errors: every failure the API reports has ``{"error": {message, type, param, code}}``.

Messages are written here or by our own code, never copied from request content, so an error
can be logged or shown without leaking a prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("serve")


class ApiError(Exception):
    """An error with an HTTP status that the client can act on."""

    status_code: int = 400
    error_type: str = "invalid_request_error"
    code: str | None = None
    ledgered: bool = False  # the request's own ledger entry already records it: no refusal entry too

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class InvalidRequestError(ApiError):
    code = "invalid_request"


class AuthenticationError(ApiError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(ApiError):
    status_code = 403
    error_type = "permission_error"
    code = "insufficient_role"


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class RateLimitError(ApiError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
REFUSAL_REASONS: dict[type[ApiError], str] = {
    AuthenticationError: "unauthenticated",
    PermissionDeniedError: "forbidden",
    RateLimitError: "rate_limited",
}


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(error: ApiError) -> JSONResponse:
    body = error_body(error.message, error.error_type, error.code, error.param)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    """Where and what, never the offending input (it may be a prompt)."""
    problems = []
    first_param = None
    for item in error.errors()[:5]:
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        if item.get("type") == "extra_forbidden":
            location = [*location[:-1], "(unknown field)"]  # the field name came from the client
        where = ".".join(location) or "body"
        first_param = first_param or where
        problems.append(f"{where}: {item.get('msg', 'invalid value')}")
    return "invalid request: " + "; ".join(problems), first_param


RefusalHook = Callable[[Request, int, str], Awaitable[None]]


def refusal_reason(error: ApiError) -> str:
    """The ledger's reason code for a refused request: a fixed word per error class, never a message."""
    for kind, reason in REFUSAL_REASONS.items():
        if isinstance(error, kind):
            return reason
    return error.code or "refused"


def install_error_handlers(app: FastAPI, on_refused: RefusalHook | None = None) -> None:
    """OpenAI-shaped bodies for every error; ``on_refused`` hears of every 4xx (for the ledger)."""

    async def refused(request: Request, status: int, reason: str) -> None:
        if on_refused is not None and 400 <= status < 500:
            await on_refused(request, status, reason)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        if not error.ledgered:
            await refused(request, error.status_code, refusal_reason(error))
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        await refused(request, 400, "invalid_request")
        return JSONResponse(error_body(message, "invalid_request_error", "invalid_request", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        message = error.detail if isinstance(error.detail, str) else "request failed"
        await refused(request, error.status_code, HTTP_CODES.get(error.status_code, "refused"))
        return JSONResponse(
            error_body(message, kind, HTTP_CODES.get(error.status_code)),
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.error("internal error %s", type(error).__name__)
        return JSONResponse(
            error_body("internal server error", "server_error", "internal_error"), status_code=500
        )
