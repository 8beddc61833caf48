"""Every failure of the API as OpenAI's error object, ``{"error": {"message", "type", "param", "code"}}``,
so that OpenAI clients raise their usual exceptions with our message (which says what to do)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EmptyKnowledgeBaseError, KBError, user_message

log = logging.getLogger("kb_assistant.server")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error",
          429: "rate_limit_error", 503: "server_busy_error"}


class APIError(Exception):
    """An expected failure of one request: its status, one line for the client, and where it lies."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "api_error"), "param": param, "code": code}}


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code=code, param=param), status_code=status, headers=headers)


def as_api_error(exc: BaseException) -> APIError | None:
    """Our user-facing errors (kb_assistant.errors) as API errors; None for a bug."""
    from ..kb import KBBusyError

    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, KBBusyError):
        return APIError(409, str(exc), code="kb_busy")
    if isinstance(exc, EmptyKnowledgeBaseError):
        return APIError(400, str(exc), code="kb_empty")
    message = user_message(exc)
    if message is None:
        return None
    return APIError(400, message, code="invalid_request" if isinstance(exc, KBError) else "unreadable")


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """One line for a body that is not JSON or does not match the schema; the first problem named."""
    errors = exc.errors()
    if not errors:
        return "the request body is invalid", None
    err = errors[0]
    loc = [str(x) for x in err.get("loc", ()) if x != "body"]
    field = ".".join(loc) or None
    if err.get("type") == "json_invalid":
        return ("the request body is not valid JSON (" + str(err.get("ctx", {}).get("error", "parse error"))
                + "): send a JSON object with Content-Type: application/json"), None
    if err.get("type") == "missing":
        return f"missing required field {field!r}: see /docs for the request schema", field
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"field {field or 'body'}: {msg}", field


def install_error_handlers(app: FastAPI) -> None:
    """Turn validation errors, HTTP errors, our errors and bugs into OpenAI-shaped responses."""

    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe_validation(exc)
        return error_response(400, message, code="invalid_request", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint {request.method} {request.url.path}: see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}: see /docs"
        code = "body_too_large" if exc.status_code == 413 else None
        return error_response(exc.status_code, message, code=code, headers=getattr(exc, "headers", None))

    @app.exception_handler(KBError)
    async def _ours(request: Request, exc: KBError) -> JSONResponse:
        known = as_api_error(exc)
        assert known is not None
        return error_response(known.status, known.message, code=known.code)

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception) -> JSONResponse:
        known = as_api_error(exc)
        if known is not None:
            return error_response(known.status, known.message, code=known.code)
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}): the server log has the details",
                              code="internal_error")
