"""Request fingerprints, idempotency keys and when an idempotent call is sent again."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import (
    IdempotencyKeyInUse,
    InvalidRequest,
    RendioConnectionError,
    RendioError,
    ServerError,
)
from .arguments import as_uuid

GENERATE_PATH = "/functions/v1/generate-video"


# --- fingerprints and keys ---------------------------------------------------------------
def canonical_json(value: Any, field: str = "body") -> bytes:
    """`value` as canonical JSON bytes (sorted keys, no whitespace, UTF-8).

    InvalidRequest naming `field` for anything that is not JSON: NaN or infinite
    floats, lone surrogates, or objects json cannot encode (no `default=str`, so two
    different values never collapse into one string).
    """
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidRequest(f"{field} must be JSON (finite numbers, valid Unicode): {exc}",
                             details={"field": field}) from exc


def request_hash(method: str, path: str, body: Mapping[str, Any]) -> str:
    """The request fingerprint stored with an idempotency key.

    SHA-256 hex of the upper-cased method, the path and `canonical_json(body)`, each
    followed by a newline, so equal requests hash equal however their keys were
    ordered. InvalidRequest when `body` is not JSON.
    """
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical_json(body)):
        digest.update(part)
        digest.update(b"\n")
    return digest.hexdigest()


def generation_body(model_id: uuid.UUID, prompt: str,
                    settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The canonical body of a video generation request, as request_hash sees it.

    `{"model_id": <lower-case UUID>, "prompt": <prompt>, "settings": <object>}`;
    validated to be JSON (InvalidRequest otherwise).
    """
    body = {"model_id": str(model_id).lower(), "prompt": prompt,
            "settings": dict(settings or {})}
    canonical_json(body["prompt"], "prompt")
    canonical_json(body["settings"], "settings")
    return body


def idempotency_key(key: uuid.UUID | str | None) -> uuid.UUID:
    """The caller's key as a UUID, or a new one (generated once, before any retry)."""
    if key is None:
        return uuid.uuid4()
    return as_uuid(key, "idempotency_key")


# A fixed namespace, so the key of a failed job's retry is the same in every process.
_RETRY_NAMESPACE = uuid.UUID("6f6d1c52-6b1e-4d0a-9a57-2a1b8f0c5e31")


def retry_key(failed_job_id: uuid.UUID) -> uuid.UUID:
    """The idempotency key of the retry of a failed job: retrying it twice replays."""
    return uuid.uuid5(_RETRY_NAMESPACE, f"retry:{failed_job_id}")


# --- retries -----------------------------------------------------------------------------
MAX_RETRIES = 2
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
# ServerErrors that a retry cannot fix: the schema, the answer's shape or the URL is wrong.
_PERMANENT_SERVER_CODES = {"schema_out_of_date", "invalid_response", "unexpected_redirect"}


def should_retry(error: RendioError, retries_done: int, max_retries: int = MAX_RETRIES) -> bool:
    """Whether an idempotent call that failed with `error` should be sent again.

    Only transient failures: connection errors and timeouts, 5xx answers, and an
    idempotency key whose first request is still running (409); at most
    `max_retries` retries.
    """
    if retries_done >= max_retries:
        return False
    if isinstance(error, RendioConnectionError | IdempotencyKeyInUse):
        return True
    return (isinstance(error, ServerError) and error.http_status >= 500
            and error.code not in _PERMANENT_SERVER_CODES)


def backoff_seconds(retry: int) -> float:
    """Capped exponential backoff before retry number `retry` (1, 2, ...), no jitter."""
    return float(min(RETRY_MAX_SECONDS, RETRY_INITIAL_SECONDS * 2 ** max(retry - 1, 0)))


def add_jitter(seconds: float) -> float:
    """A random delay in [seconds / 2, seconds], so retrying clients spread out."""
    return seconds * (0.5 + random.random() / 2)
