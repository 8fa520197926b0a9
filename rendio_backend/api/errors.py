"""The API's error envelope, `{"error": {"code", "message", ...details}}`, and the
handlers that turn every failure into one: library errors by their code and status,
FastAPI's validation errors as 400 `invalid_request`, unknown routes as 404. A 5xx
never carries the underlying message (it may hold SQL or a URL): it is logged instead.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import RateLimited, RendioConnectionError, RendioError

log = logging.getLogger("rendio.api")

# Library error details that may reach a client (they come from our SQL's PT errors).
_CLIENT_DETAILS = ("required", "available", "resource", "id", "field", "reason", "limit",
                   "in_flight", "retry_after", "idempotency_key", "model_id")


class ApiError(Exception):
    """An error the API answers as it is (status, stable code, message, details)."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, *,
                   headers: dict[str, str] | None = None, **details: Any) -> JSONResponse:
    """The envelope; `details` sit beside code and message."""
    return JSONResponse({"error": {"code": code, "message": message, **details}},
                        status_code=status, headers=headers)


def _from_library(exc: RendioError) -> JSONResponse:
    if isinstance(exc, RendioConnectionError):
        log.warning("Supabase unreachable: %s", exc)
        return error_response(503, "upstream_unavailable",
                              "the service is unavailable; try again shortly")
    if exc.http_status >= 500:
        log.error("internal error: %r %s", exc, exc.details)
        return error_response(500, "internal_error", "internal error")
    details = {k: exc.details[k] for k in _CLIENT_DETAILS if k in exc.details}
    headers = {}
    if isinstance(exc, RateLimited) and details.get("retry_after"):
        headers["Retry-After"] = str(details["retry_after"])
    return error_response(exc.http_status, exc.code, exc.message, headers=headers, **details)


def _first_problem(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if not errors:
        return "body", "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "body", "the body is not valid JSON"
    where = [str(part) for part in first.get("loc", ())]
    if where and where[0] in ("body", "query", "header", "path", "cookie"):
        where = where[1:]  # FastAPI's location, not part of the field's name
    field = ".".join(where) or "body"
    return field, f"{field}: {first.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers,
                              **exc.details)

    async def library_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RendioError)
        return _from_library(exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        field, message = _first_problem(exc)
        return error_response(400, "invalid_request", message, field=field)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, "not_found", f"no route {request.url.path}")
        if exc.status_code == 405:
            return error_response(405, "method_not_allowed",
                                  f"{request.method} is not allowed on {request.url.path}")
        if exc.status_code == 400:  # FastAPI could not read the body (e.g. not UTF-8)
            return error_response(400, "invalid_request", str(exc.detail), field="body")
        return error_response(exc.status_code, "http_error", str(exc.detail))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RendioError, library_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
