"""Errors of the local Auth service and how GoTrue puts them on the wire.

    Exception
     ├── ApiError          GoTrue's HTTPError: status, error code, message
     ├── OAuthError        OAuth2 error: always HTTP 400, {"error", "error_description"}
     └── WeakPasswordError 422 `weak_password` with the failed rules (`reasons`)

Rendering follows supabase/auth `internal/api/errors.go`: a request carrying
`X-Supabase-Api-Version: 2024-01-01` (or later) gets `{"code": <error_code>, "message"}`
and the header echoed back; any other request gets the legacy
`{"code": <http status>, "error_code", "msg"}`. `x-sb-error-code` is set on every
HTTPError that has a code. Anything else becomes a 500 with a generic message.
"""

from __future__ import annotations

import json
import logging
from datetime import date

from starlette.requests import Request
from starlette.responses import Response

API_VERSION_HEADER = "X-Supabase-Api-Version"
_API_VERSION_2024 = date(2024, 1, 1)
_UNEXPECTED = "Unexpected failure, please check server logs for more information"

log = logging.getLogger("rendio.local.auth")


class ApiError(Exception):
    """An HTTP error with one of GoTrue's error codes (`ErrorCode*` in errorcode.go)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class OAuthError(Exception):
    """An OAuth2-style error; GoTrue always answers these with HTTP 400."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class WeakPasswordError(Exception):
    """The password fails the strength rules; `reasons` names which ones."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = reasons


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def unprocessable(code: str, message: str) -> ApiError:
    return ApiError(422, code, message)


def forbidden(code: str, message: str) -> ApiError:
    return ApiError(403, code, message)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def internal(message: str) -> ApiError:
    return ApiError(500, "unexpected_failure", message)


def phone_disabled(message: str) -> ApiError:
    """Phone sign-up and sign-in need an SMS provider, which the local stack has not."""
    return ApiError(400, "phone_provider_disabled", message)


def _uses_2024_api(request: Request) -> bool:
    raw = request.headers.get(API_VERSION_HEADER, "")
    try:
        return date.fromisoformat(raw) >= _API_VERSION_2024 if len(raw) == 10 else False
    except ValueError:
        return False


def _json(status: int, body: object, headers: dict[str, str]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, headers=headers,
                    media_type="application/json")


def error_response(exc: Exception, request: Request) -> Response:
    """The response GoTrue would send for `exc` on `request`."""
    v2024 = _uses_2024_api(request)
    headers: dict[str, str] = {API_VERSION_HEADER: "2024-01-01"} if v2024 else {}
    if isinstance(exc, WeakPasswordError):
        payload = {"reasons": exc.reasons}
        if v2024:
            return _json(422, {"code": "weak_password", "message": exc.message,
                               "weak_password": payload}, headers)
        headers["x-sb-error-code"] = "weak_password"
        return _json(422, {"code": 422, "error_code": "weak_password", "msg": exc.message,
                           "weak_password": payload}, headers)
    if isinstance(exc, ApiError):
        headers["x-sb-error-code"] = exc.code
        if exc.status >= 500:
            log.error("auth: %s", exc.message, exc_info=exc.__cause__)
        if v2024:
            return _json(exc.status, {"code": exc.code, "message": exc.message}, headers)
        return _json(exc.status, {"code": exc.status, "error_code": exc.code,
                                  "msg": exc.message}, headers)
    if isinstance(exc, OAuthError):
        body = {"error": exc.error}
        if exc.description:
            body["error_description"] = exc.description
        return _json(400, body, headers)
    log.exception("auth: unhandled error", exc_info=exc)
    if v2024:
        return _json(500, {"code": "unexpected_failure", "message": _UNEXPECTED}, headers)
    return _json(500, {"code": 500, "error_code": "unexpected_failure", "msg": _UNEXPECTED},
                 headers)
