"""Translation of the Supabase clients' and httpx's errors into rendio errors (no I/O).

`translating()` wraps every call into a Supabase client, sync or async (a plain
context manager works around `await` too), so callers never see a raw APIError,
AuthApiError, StorageApiError or httpx exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from postgrest.exceptions import APIError
from pydantic import ValidationError as PydanticValidationError
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException
from supabase_auth.errors import AuthApiError, AuthRetryableError, AuthUnknownError
from supabase_auth.errors import AuthError as SupabaseAuthError

from .errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    RateLimited,
    RendioConnectionError,
    RendioError,
    ServerError,
    StorageError,
    TransactionAlreadyUsed,
)

# PostgREST's own request errors (PGRST1xx: bad query syntax or parameters).
_SCHEMA_CODES = {"PGRST202", "PGRST204", "PGRST205", "42883", "42P01", "42703"}
_JWT_CODES = {"PGRST300", "PGRST301", "PGRST302", "PGRST303"}
_INVALID_INPUT_CODES = {"22P02", "22023", "22007", "22008", "23502", "23514", "22001",
                        "22003", "23503"}


def _details(raw: Any) -> dict[str, Any]:
    """The SQL functions put a JSON object in DETAIL; anything else is kept as text."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"detail": raw}
        return parsed if isinstance(parsed, dict) else {"detail": parsed}
    return {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def from_status(status: int, message: str, *, service: str,
                details: dict[str, Any] | None = None) -> RendioError:
    """A rendio error for an HTTP status whose body said nothing usable (e.g. HTML).

    Used when a proxy or gateway in front of `service` answered instead of the
    service itself, so only the status is known.
    """
    text = f"{service} answered HTTP {status}: {message}" if message else (
        f"{service} answered HTTP {status}")
    if 300 <= status < 400:
        # Redirects are never followed: the API key must not travel to another origin.
        return ServerError(f"{text} (a redirect; is SUPABASE_URL the project's API URL?)",
                           code="unexpected_redirect", http_status=502, details=details)
    by_status: dict[int, tuple[type[RendioError], str]] = {
        401: (AuthError, "unauthorized"), 403: (PermissionDenied, "forbidden"),
        404: (NotFound, "not_found"), 409: (Conflict, "conflict"),
        413: (InvalidRequest, "payload_too_large"), 429: (RateLimited, "rate_limited")}
    if status in by_status:
        cls, code = by_status[status]
        return cls(text, code=code, http_status=status, details=details)
    if 400 <= status < 500:
        return InvalidRequest(text, code="invalid_request", http_status=status,
                              details=details)
    if status in (502, 503, 504):
        return ServerError(text, code="service_unavailable", http_status=status,
                           details=details)
    return ServerError(text, code="server_error", http_status=status if status >= 500 else None,
                       details=details)


def _bare_status(code: str) -> int | None:
    """The HTTP status postgrest-py puts in `code` when the body was not PostgREST JSON."""
    if len(code) == 3 and code.isdigit() and 100 <= int(code) <= 599:
        return int(code)
    return None


# The HTTP API's stable codes (its envelope `{"error": {"code", "message", ...}}`).
_API_CODES: dict[str, type[RendioError]] = {
    "unauthorized": AuthError, "invalid_request": InvalidRequest, "not_found": NotFound,
    "idempotency_key_in_use": IdempotencyKeyInUse,
    "idempotency_key_reused": IdempotencyKeyReused, "model_unavailable": ModelUnavailable,
    "rate_limited": RateLimited, "payload_too_large": InvalidRequest,
    "transaction_already_used": TransactionAlreadyUsed,
}


def from_api(response: httpx.Response) -> RendioError:
    """A rendio error for an error answer of the HTTP API (`/functions/v1`)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return from_status(response.status_code, "", service="the Rendio API")
    code, message = error["code"], str(error.get("message") or error["code"])
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    status = response.status_code
    if code == "insufficient_credits":
        return InsufficientCredits(message, required=_int(details.get("required")),
                                   available=_int(details.get("available")), details=details)
    if code == "upstream_unavailable" or status >= 500:
        return ServerError(message, code=code, http_status=status, details=details)
    cls = _API_CODES.get(code, InvalidRequest if status < 500 else ServerError)
    return cls(message, code=code, http_status=status, details=details)


def from_postgrest(exc: APIError) -> RendioError:
    """A rendio error for a PostgREST error (code = SQLSTATE or PGRSTnnn)."""
    code = exc.code or ""
    message = exc.message or "request failed"
    details = _details(exc.details)
    if exc.hint:
        details.setdefault("hint", exc.hint)
    if code.startswith("PT") and len(code) == 5:
        # Our SQL functions: SQLSTATE PTnnn (PostgREST answers HTTP nnn), message = the
        # stable error code, detail = JSON.
        status = _int(code[2:])
        if status == 402:
            required, available = _int(details.get("required")), _int(details.get("available"))
            return InsufficientCredits(
                f"insufficient credits: {required} required, {available} available",
                required=required, available=available, details=details)
        if status == 409:
            cls: type[RendioError] = {
                "idempotency_key_in_use": IdempotencyKeyInUse,
                "transaction_already_used": TransactionAlreadyUsed,
            }.get(message, Conflict)
            return cls(message.replace("_", " "), code=message, details=details)
        if status == 422:
            cls = {"idempotency_key_reused": IdempotencyKeyReused,
                   "model_unavailable": ModelUnavailable}.get(message, InvalidRequest)
            return cls(message.replace("_", " "), code=message, http_status=422,
                       details=details)
        cls = {400: InvalidRequest, 401: AuthError, 403: PermissionDenied,
               404: NotFound, 429: RateLimited}.get(status, ServerError)
        text = message.replace("_", " ")
        if status == 404 and details.get("resource"):
            # "model not found" and "user not found" must not read the same.
            text = f"{details['resource']} not found"
        return cls(text, code=message, http_status=status or None, details=details)
    if code == "42501":
        return PermissionDenied(message, code="forbidden", details=details)
    if code in _JWT_CODES:
        return AuthError(message, code="invalid_jwt", details=details)
    if code == "PGRST116":
        return NotFound(message, code="not_found", details=details)
    if code in _SCHEMA_CODES:
        return ServerError(
            f"{message} (is the database schema up to date? apply supabase/migrations)",
            code="schema_out_of_date", details=details)
    if code == "23505":
        return Conflict(message, code="conflict", details=details)
    if code in _INVALID_INPUT_CODES or code.startswith("PGRST1"):
        return InvalidRequest(message, code="invalid_request", details=details)
    if not code or code == "401":
        # Not PostgREST's JSON: the gateway (Kong) rejected the API key.
        lowered = message.lower()
        if code == "401" or "api key" in lowered or "credentials" in lowered:
            return AuthError(message, code="invalid_api_key", details=details)
    bare = _bare_status(code)
    if bare is not None:
        # Not PostgREST's JSON (a proxy's HTML page, an empty body): only the status
        # is known. The body may be a whole HTML page, so it is not kept.
        return from_status(bare, message, service="PostgREST")
    if code.startswith(("08", "53", "57")):
        return ServerError(message, code="service_unavailable", http_status=503,
                           details=details)
    return ServerError(message, code=code or "server_error", details=details)


def _response_status(exc: BaseException) -> int:
    """The status of the HTTP response behind `exc` (its causes), or 0."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.HTTPStatusError):
            return seen.response.status_code
        seen = seen.__cause__ or seen.__context__
    return 0


def from_auth(exc: SupabaseAuthError) -> RendioError:
    """A rendio error for a supabase_auth error, with GoTrue's real HTTP status."""
    message = exc.message or "authentication failed"
    code = str(exc.code) if exc.code else None
    if isinstance(exc, AuthRetryableError):
        status = _int(getattr(exc, "status", 0))
        if status == 0:
            return RendioConnectionError(f"cannot reach Supabase Auth: {message}")
        return ServerError(message, code="auth_unavailable", http_status=status)
    if isinstance(exc, AuthUnknownError):
        # The answer was not GoTrue's JSON (e.g. a proxy's HTML page): map by status.
        status = _response_status(exc)
        if status:
            return from_status(status, "", service="Supabase Auth")
        return ServerError(f"unexpected answer from Supabase Auth: {message}",
                           code="invalid_response")
    status = _int(getattr(exc, "status", 0))
    http_status = status if 400 <= status <= 599 else None
    if status == 429 or code == "over_request_rate_limit":
        return RateLimited(message, code=code or "rate_limited")
    if status >= 500:
        return ServerError(message, code=code or "auth_error", http_status=status)
    if isinstance(exc, AuthApiError) and status == 404:
        return NotFound(message, code=code or "not_found")
    return AuthError(message, code=code or "unauthorized", http_status=http_status)


def from_storage(exc: StorageException) -> RendioError:
    """A rendio error for a storage3 error (Storage puts the real status in the body)."""
    if not isinstance(exc, StorageApiError):
        return StorageError(str(exc), code="storage_error")
    status = _int(exc.status)
    message = exc.message or "storage request failed"
    code = str(exc.code or "storage_error")
    details = {"storage_error": code, "status": status}
    lowered = message.lower()
    if 300 <= status < 400:
        return from_status(status, "", service="Supabase Storage", details=details)
    if status == 404:
        return NotFound(message, code="not_found", details=details)
    if status == 403:
        return PermissionDenied(message, code="forbidden", details=details)
    if status == 401 or "jwt" in lowered or "signature" in lowered or "token" in lowered:
        return AuthError(message, code="unauthorized", details=details)
    if status == 409:
        return Conflict(message, code="already_exists", details=details)
    if status == 413:
        return InvalidRequest(message, code="payload_too_large", http_status=413,
                              details=details)
    if status == 415:
        return InvalidRequest(message, code="invalid_mime_type", http_status=415,
                              details=details)
    if status == 429:
        return RateLimited(message, details=details)
    if 400 <= status < 500:
        return InvalidRequest(message, code="invalid_request", details=details)
    return StorageError(message, code="storage_error", http_status=status or None,
                        details=details)


def from_httpx(exc: httpx.HTTPError) -> RendioError:
    """A rendio error for a transport failure."""
    url = ""
    try:
        url = str(exc.request.url.copy_with(query=None))
    except RuntimeError:  # no request attached
        pass
    where = f" ({url})" if url else ""
    if isinstance(exc, httpx.TimeoutException):
        return RendioConnectionError(f"Supabase did not answer in time{where}",
                                     code="timeout")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigurationError(f"invalid Supabase URL{where}: {exc}", code="invalid_url")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return ServerError(f"unexpected HTTP {status}{where}", http_status=status)
    return RendioConnectionError(
        f"cannot reach Supabase{where}: {exc or type(exc).__name__}; is the stack running?")


@contextmanager
def translating() -> Iterator[None]:
    """Re-raise any Supabase client or httpx error as the matching rendio error."""
    try:
        yield
    except RendioError:
        raise
    except APIError as exc:
        raise from_postgrest(exc) from exc
    except SupabaseAuthError as exc:
        raise from_auth(exc) from exc
    except StorageException as exc:
        raise from_storage(exc) from exc
    except httpx.HTTPError as exc:
        raise from_httpx(exc) from exc
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"invalid Supabase URL: {exc}", code="invalid_url") from exc
    except UnicodeEncodeError as exc:
        # httpx encodes URLs and bodies as UTF-8: a lone surrogate in a caller's text.
        raise InvalidRequest("the request contains text that is not valid Unicode "
                             "(a lone surrogate)", code="invalid_request") from exc
    except json.JSONDecodeError as exc:
        # A client library parsed a 2xx answer that was not JSON.
        raise ServerError("unexpected answer from Supabase: not JSON",
                          code="invalid_response") from exc
    except PydanticValidationError as exc:
        # Our models (or a client's) rejected what the server answered.
        raise ServerError(f"unexpected answer from Supabase: {exc.errors()[0]['msg']}",
                          code="invalid_response") from exc
