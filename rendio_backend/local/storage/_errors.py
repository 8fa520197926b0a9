"""Errors of the local Storage service, rendered exactly as Supabase Storage renders them.

Storage answers most client errors with HTTP 400 and puts the "real" status in the body
as a string (`{"statusCode": "404", "error": "not_found", "code": "NoSuchKey", ...}`);
HTTP 500 is kept for server errors (supabase/storage `src/http/error-handler.ts`,
`src/internal/errors/codes.ts`). storage3 needs `statusCode`, `error` and `message`.

    StorageApiError            one class; `code` is Storage's ErrorCode
      built by the functions below (one per Storage `ERRORS.*` constructor we use)
      and by `from_pg_error` (SQLSTATE -> error, as `DBError.fromDBError`)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response

log = logging.getLogger("rendio.local.storage")


class StorageApiError(Exception):
    """An error answered to the client; never carries SQL text or a traceback."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        message: str,
        error: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.error = error
        # Storage's `userStatusCode`: 500 stays 500, everything else is sent as 400.
        self.http_status = http_status or (500 if status_code == 500 else 400)

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": str(self.status_code),
            "code": self.code,
            "error": self.error or self.code,
            "message": self.message,
        }


def validation_error(message: str) -> StorageApiError:
    """A request that fails Storage's JSON-schema validation (Fastify FST_ERR_VALIDATION)."""
    return StorageApiError(status_code=400, code="InvalidRequest", error="Error",
                           message=message)


def no_such_bucket() -> StorageApiError:
    return StorageApiError(status_code=404, code="NoSuchBucket", error="Bucket not found",
                           message="Bucket not found")


def no_such_key() -> StorageApiError:
    return StorageApiError(status_code=404, code="NoSuchKey", error="not_found",
                           message="Object not found")


def access_denied(message: str = "Access denied") -> StorageApiError:
    return StorageApiError(status_code=403, code="AccessDenied", error="Unauthorized",
                           message=message)


def resource_already_exists() -> StorageApiError:
    return StorageApiError(status_code=409, code="ResourceAlreadyExists", error="Duplicate",
                           message="The resource already exists")


def key_already_exists() -> StorageApiError:
    return StorageApiError(status_code=409, code="KeyAlreadyExists", error="Duplicate",
                           message="The resource already exists")


def bucket_already_exists() -> StorageApiError:
    return StorageApiError(status_code=409, code="BucketAlreadyExists", error="Duplicate",
                           message="The resource already exists")


def bucket_not_empty() -> StorageApiError:
    return StorageApiError(status_code=409, code="ResourceNotEmpty",
                           message="The bucket you tried to delete is not empty")


def unable_to_empty_bucket(message: str) -> StorageApiError:
    return StorageApiError(status_code=409, code="InvalidRequest", message=message)


def entity_too_large(entity: str = "object") -> StorageApiError:
    return StorageApiError(status_code=413, code="EntityTooLarge", error="Payload too large",
                           message=f"The {entity} exceeded the maximum allowed size")


def invalid_mime_type(mime_type: str) -> StorageApiError:
    return StorageApiError(status_code=415, code="InvalidMimeType", error="invalid_mime_type",
                           message=f"mime type {mime_type} is not supported")


def invalid_key(key: str) -> StorageApiError:
    return StorageApiError(status_code=400, code="InvalidKey", message=f"Invalid key: {key}")


def invalid_bucket_name() -> StorageApiError:
    return StorageApiError(status_code=400, code="InvalidBucketName", error="Invalid Input",
                           message="Bucket name invalid")


def invalid_file_size_limit() -> StorageApiError:
    return StorageApiError(
        status_code=400, code="InvalidRequest",
        message="Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")


def no_content_provided(message: str = "No content provided") -> StorageApiError:
    return StorageApiError(status_code=400, code="InvalidRequest", message=message)


def invalid_jwt(message: str = "Invalid JWT") -> StorageApiError:
    return StorageApiError(status_code=400, code="InvalidJWT", message=message)


def invalid_signature(message: str = "Invalid signature") -> StorageApiError:
    return StorageApiError(status_code=400, code="InvalidSignature", message=message)


def expired_signature() -> StorageApiError:
    return StorageApiError(status_code=400, code="ExpiredToken",
                           message="The provided token has expired.")


def route_not_found(method: str, path: str) -> StorageApiError:
    """Storage's REST not-found handler: a real 404, code InvalidRequest."""
    return StorageApiError(status_code=404, code="InvalidRequest", error="Not Found",
                           message=f"Route {method}:{path} not found", http_status=404)


def internal_error() -> StorageApiError:
    return StorageApiError(status_code=500, code="InternalError", error="Internal",
                           message="Internal Server Error")


def from_pg_error(exc: psycopg.Error) -> StorageApiError:
    """Map a PostgreSQL error as Storage's `DBError.fromDBError` does (no SQL text leaks)."""
    state = exc.sqlstate or ""
    message = exc.diag.message_primary or ""
    if state == "42501":
        return access_denied("new row violates row-level security policy"
                             if "row-level security" in message else message)
    if state == "23505":
        return resource_already_exists()
    if state == "23503":
        if "is still referenced from table" in (exc.diag.message_detail or ""):
            return StorageApiError(
                status_code=409, code="ResourceReferenced",
                message="The resource could not be updated or removed due to a foreign key "
                        "constraint")
        return StorageApiError(status_code=404, code="InvalidRequest",
                               message="The related resource does not exist")
    if state == "55P03":
        return StorageApiError(status_code=423, code="ResourceLocked",
                               message="The resource is locked")
    if state == "57014":
        return StorageApiError(status_code=544, code="DatabaseTimeout", http_status=544,
                               message="The connection to the database timed out")
    if state == "22P02":
        return StorageApiError(status_code=400, code="InvalidParameter",
                               message=message or "Invalid value format or type conversion "
                                                  "failed")
    if state in ("42703", "42P01"):
        return StorageApiError(
            status_code=503, code="DatabaseSchemaMismatch",
            message="The database schema is out of sync. Please run migrations or contact "
                    "support.")
    return StorageApiError(status_code=500, code="DatabaseError",
                           message=f"database error, code: {state}")


@contextmanager
def conflict_as(error: Callable[[], StorageApiError]) -> Iterator[None]:
    """A unique violation inside the block answers as `error()`: Storage names the
    conflict after what was being created (a key, a bucket)."""
    try:
        yield
    except StorageApiError as exc:
        if exc.code == "ResourceAlreadyExists":
            raise error() from None
        raise


def error_response(exc: Exception, request: Request) -> Response:
    """Storage's JSON error body for `exc`; anything unexpected is logged and answered
    as a bare InternalError, so no SQL text or traceback reaches the client."""
    if not isinstance(exc, StorageApiError):
        log.error("storage request failed: %s %s", request.method, request.url.path,
                  exc_info=exc)
        exc = internal_error()
    return json_response(exc.body(), exc.http_status)
