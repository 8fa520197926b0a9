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
    ├── InvalidRequest            400: the request itself is invalid
    ├── InsufficientCredits       402: required, available
    ├── Conflict                  409
    │   ├── TransactionAlreadyUsed 409: an IAP transaction credited to another user
    │   └── IdempotencyKeyInUse   409: the key's first request is still running
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

from typing import Any, ClassVar, TypedDict, Unpack

__all__ = [
    "AuthError",
    "ConfigurationError",
    "Conflict",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InvalidRequest",
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
]


class _Options(TypedDict, total=False):
    """The keyword arguments of RendioError, for subclasses that add their own."""

    code: str | None
    http_status: int | None
    details: dict[str, Any] | None


class RendioError(Exception):
    """Base of every error raised by rendio_backend.

    A subclass declares its default `code` and HTTP status in its class line,
    `class NotFound(RendioError, code="not_found", status=404)`; it inherits what it
    leaves out.
    """

    default_code: ClassVar[str] = "rendio_error"
    default_status: ClassVar[int] = 500

    def __init_subclass__(cls, *, code: str | None = None, status: int | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.default_code = code
        if status is not None:
            cls.default_status = status

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


class ConfigurationError(RendioError, code="configuration_error", status=500):
    """The library is not configured well enough to make the call."""


class RendioConnectionError(RendioError, code="connection_failed", status=503):
    """Supabase could not be reached (refused, reset, DNS, timeout); transient.

    The request may still have been applied (a timeout can hit after the server
    committed), so retrying is safe only for reads and idempotent calls: retry
    `create_job` with the same `idempotency_key` (its errors carry the key it used in
    `details["idempotency_key"]`), never with a new one.
    """

    retryable = True


class AuthError(RendioError, code="unauthorized", status=401):
    """Authentication failed: bad credentials or token, no session, invalid API key."""


class PermissionDenied(RendioError, code="forbidden", status=403):
    """The caller is authenticated but may not do this (RLS, privileges)."""


class NotFound(RendioError, code="not_found", status=404):
    """The row or object does not exist, or is not visible to the caller."""


class InvalidRequest(RendioError, code="invalid_request", status=400):
    """The request is invalid (bad argument, constraint, size or type)."""


class InsufficientCredits(RendioError, code="insufficient_credits", status=402):
    """The balance is lower than the credits the operation needs."""

    def __init__(self, message: str | None = None, *, required: int, available: int,
                 **options: Unpack[_Options]) -> None:
        options["details"] = {"required": required, "available": available,
                              **(options.get("details") or {})}
        message = message or f"insufficient credits: {required} required, {available} available"
        super().__init__(message, **options)
        self.required = required
        self.available = available


class Conflict(RendioError, code="conflict", status=409):
    """The request conflicts with the current state."""


class TransactionAlreadyUsed(Conflict, code="transaction_already_used"):
    """The App Store transaction was already credited to another user."""


class IdempotencyKeyInUse(Conflict, code="idempotency_key_in_use"):
    """The idempotency key's first request is still running; retry later."""


class IdempotencyKeyReused(RendioError, code="idempotency_key_reused", status=422):
    """The idempotency key was used before with a different request."""


class ModelUnavailable(RendioError, code="model_unavailable", status=422):
    """The model exists but is not available for generation."""


class RateLimited(RendioError, code="rate_limited", status=429):
    """Too many requests; retry later."""


class ProviderError(RendioError, code="provider_error", status=502):
    """A video provider failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, **options: Unpack[_Options]) -> None:
        super().__init__(message, **options)
        self.retryable = retryable


class StorageError(RendioError, code="storage_error", status=500):
    """Storage failed for a reason not covered by a more specific error."""


class ServerError(RendioError, code="server_error", status=500):
    """The server failed or answered something unexpected."""
