"""The one exception hierarchy of rendio_backend.

Every error that leaves the library is a `RendioError`; errors of the official
Supabase clients (postgrest `APIError`, supabase_auth `AuthApiError` /
`AuthRetryableError`, storage3 `StorageApiError`) and of httpx are translated where
they enter (`raise ... from exc`, so the original stays on `__cause__`)::

    RendioError                   code, http_status, details
    ├── ConfigurationError        missing or invalid settings, or a closed client
    │                             (nothing was sent)
    ├── RendioConnectionError     network down, timeout, stack stopped (transient)
    ├── AuthError                 401: sign-in failed, no/expired session, bad API key
    ├── PermissionDenied          403: RLS or a missing privilege said no
    ├── NotFound                  404: no such row/object, or not yours
    ├── ValidationError           400: the request itself is invalid
    ├── InsufficientCredits       402: required, available
    ├── Conflict                  409
    │   ├── IdempotencyConflict   409: the key's first request is still running
    │   └── TransactionAlreadyUsed 409: an IAP transaction credited to another user
    ├── IdempotencyKeyReused      422: same key, different request
    ├── ModelUnavailable          422: the model is switched off
    ├── RateLimited               429
    ├── ProviderError             a video provider failed (retryable tells whether to retry)
    ├── StorageError              Storage failed for another reason
    └── ServerError               5xx, an unexpected answer, or a schema out of date

`code` is a stable machine-readable string (the SQL functions' error codes such as
`insufficient_credits`, Auth's error codes, Storage's error names); `http_status` is
the status the HTTP API answers with; `details` carries structured context.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "Conflict",
    "ConfigurationError",
    "IdempotencyConflict",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "ModelUnavailable",
    "NotFound",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "RendioConnectionError",
    "RendioError",
    "ServerError",
    "StorageError",
    "TransactionAlreadyUsed",
    "ValidationError",
]


class RendioError(Exception):
    """Base of every error raised by rendio_backend."""

    default_code = "rendio_error"
    default_status = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.http_status = http_status or self.default_status
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.message!r}, code={self.code!r}, "
                f"http_status={self.http_status})")


class ConfigurationError(RendioError):
    """The library is not configured well enough to make the call."""

    default_code = "configuration_error"
    default_status = 500


class RendioConnectionError(RendioError):
    """Supabase could not be reached (refused, reset, DNS, timeout); transient.

    The request may still have been applied (a timeout can hit after the server
    committed), so retrying is safe only for reads and idempotent calls: retry
    `create_job` with the same `idempotency_key` (its errors carry the key it used in
    `details["idempotency_key"]`), never with a new one.
    """

    default_code = "connection_failed"
    default_status = 503
    retryable = True


class AuthError(RendioError):
    """Authentication failed: bad credentials or token, no session, invalid API key."""

    default_code = "unauthorized"
    default_status = 401


class PermissionDenied(RendioError):
    """The caller is authenticated but may not do this (RLS, privileges)."""

    default_code = "forbidden"
    default_status = 403


class NotFound(RendioError):
    """The row or object does not exist, or is not visible to the caller."""

    default_code = "not_found"
    default_status = 404


class ValidationError(RendioError):
    """The request is invalid (bad argument, constraint, size or type)."""

    default_code = "invalid_request"
    default_status = 400


class InsufficientCredits(RendioError):
    """The balance is lower than the credits the operation needs."""

    default_code = "insufficient_credits"
    default_status = 402

    def __init__(
        self,
        message: str | None = None,
        *,
        required: int,
        available: int,
        code: str | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = {"required": required, "available": available, **(details or {})}
        message = message or f"insufficient credits: {required} required, {available} available"
        super().__init__(message, code=code, http_status=http_status, details=merged)
        self.required = required
        self.available = available


class Conflict(RendioError):
    """The request conflicts with the current state."""

    default_code = "conflict"
    default_status = 409


class IdempotencyConflict(Conflict):
    """The idempotency key's first request is still running; retry later."""

    default_code = "idempotency_key_in_use"


class TransactionAlreadyUsed(Conflict):
    """The App Store transaction was already credited to another user."""

    default_code = "transaction_already_used"


class IdempotencyKeyReused(RendioError):
    """The idempotency key was used before with a different request."""

    default_code = "idempotency_key_reused"
    default_status = 422


class ModelUnavailable(RendioError):
    """The model exists but is not available for generation."""

    default_code = "model_unavailable"
    default_status = 422


class RateLimited(RendioError):
    """Too many requests; retry later."""

    default_code = "rate_limited"
    default_status = 429


class ProviderError(RendioError):
    """A video provider failed; `retryable` says whether trying again may help."""

    default_code = "provider_error"
    default_status = 502

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, details=details)
        self.retryable = retryable


class StorageError(RendioError):
    """Storage failed for a reason not covered by a more specific error."""

    default_code = "storage_error"
    default_status = 500


class ServerError(RendioError):
    """The server failed or answered something unexpected."""

    default_code = "server_error"
    default_status = 500
