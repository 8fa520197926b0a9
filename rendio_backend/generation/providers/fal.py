"""fal.ai's queue REST API (https://docs.fal.ai/model-endpoints/queue) and its webhooks.

- Submit: `POST {FALAI_BASE_URL}/{provider_model_id}?fal_webhook=<url>` with
  `Authorization: Key $FALAI_API_KEY` and the job's input; the answer's `request_id`,
  `status_url`, `response_url` and `cancel_url` are kept and used as given (fal serves a
  model's subpath requests under its base app: the URLs cannot be rebuilt from the id).
- Status: `IN_QUEUE`, `IN_PROGRESS`, `COMPLETED`. COMPLETED is not success: the result
  (`GET response_url`) or the webhook's `status: OK|ERROR` decides.
- Webhooks: `X-Fal-Webhook-{Request-Id,User-Id,Timestamp,Signature}`; the signature is
  Ed25519 (hex) over `request_id \\n user_id \\n timestamp \\n sha256_hex(body)`, by any
  key of fal's JWKS (cached up to 24 h, fetched again when no key verifies, at most once
  every few seconds); the timestamp must be within ±5 minutes.

The pure steps (`webhook_fields`, `signature_matches`, `state_from_status`,
`result_from_response`, `event_from_webhook`, `parse_jwks`) are plain functions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ...config import RendioConfig
from ...errors import ModelUnavailable, ProviderError
from ...models import Model, VideoJob
from ._http import HttpAdapter, error_for_status, error_text, json_object, transport_error
from .base import (
    ProviderRequest,
    ProviderResult,
    RequestState,
    WebhookEvent,
    WebhookRejected,
    input_of,
)

__all__ = ["FalProvider", "JwksCache", "WebhookFields", "event_from_webhook", "parse_jwks",
           "result_from_output", "result_from_response", "signature_matches",
           "signed_message", "state_from_status", "webhook_fields"]

SIGNATURE_WINDOW_SECONDS = 300
JWKS_TTL_SECONDS = 24 * 3600
# A flood of forged webhooks must not become a flood of JWKS fetches.
JWKS_MIN_REFRESH_SECONDS = 5.0

HEADER_REQUEST_ID = "x-fal-webhook-request-id"
HEADER_USER_ID = "x-fal-webhook-user-id"
HEADER_TIMESTAMP = "x-fal-webhook-timestamp"
HEADER_SIGNATURE = "x-fal-webhook-signature"

_STATES = {"IN_QUEUE": RequestState.QUEUED, "IN_PROGRESS": RequestState.RUNNING,
           "COMPLETED": RequestState.DONE}
# Cancel answers that mean "nothing left to cancel" (ALREADY_COMPLETED, NOT_FOUND).
_CANCEL_SETTLED = frozenset({400, 404, 409, 410})


# --- webhook signatures --------------------------------------------------------------
@dataclass(frozen=True)
class WebhookFields:
    request_id: str
    user_id: str
    timestamp: str
    signature: bytes


def webhook_fields(headers: Mapping[str, str], *, now: float) -> WebhookFields:
    """The signature headers, checked for presence, form and freshness (±5 min)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    values = [lowered.get(name, "").strip() for name in
              (HEADER_REQUEST_ID, HEADER_USER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)]
    request_id, user_id, timestamp, signature_hex = values
    if not all(values):
        raise WebhookRejected("missing fal webhook signature headers")
    if not timestamp.isdigit():
        raise WebhookRejected("the webhook timestamp is not a unix time")
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise WebhookRejected("the webhook timestamp is outside the ±5 minute window")
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise WebhookRejected("the webhook signature is not hex") from None
    return WebhookFields(request_id, user_id, timestamp, signature)


def signed_message(fields: WebhookFields, body: bytes) -> bytes:
    """What fal signs: request id, user id, timestamp and the body's SHA-256 (hex)."""
    return "\n".join((fields.request_id, fields.user_id, fields.timestamp,
                      hashlib.sha256(body).hexdigest())).encode()


def signature_matches(fields: WebhookFields, body: bytes,
                      keys: Sequence[Ed25519PublicKey]) -> bool:
    """True when any key of the set signed this webhook."""
    message = signed_message(fields, body)
    for key in keys:
        try:
            key.verify(fields.signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def parse_jwks(document: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 (OKP) keys of a JWKS document; other or malformed keys are skipped."""
    keys: list[Ed25519PublicKey] = []
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not (isinstance(entry, dict) and entry.get("kty") == "OKP"
                and entry.get("crv") == "Ed25519" and isinstance(entry.get("x"), str)):
            continue
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(_b64url(entry["x"])))
        except (ValueError, binascii.Error):
            continue
    return keys


class JwksCache:
    """fal's webhook keys: fetched on first use, kept up to a day, fetched again on a
    signature no key verifies (at most every `min_refresh` seconds)."""

    def __init__(self, fetch: Callable[[], Awaitable[Any]], *,
                 clock: Callable[[], float] = time.monotonic,
                 ttl: float = JWKS_TTL_SECONDS,
                 min_refresh: float = JWKS_MIN_REFRESH_SECONDS) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    async def keys(self, *, refresh: bool = False) -> list[Ed25519PublicKey]:
        """The key set; `refresh` asks for a fresh one (at most every `min_refresh` s)."""
        async with self._lock:
            now = self._clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            if self._failed_at is not None and now - self._failed_at < self._min_refresh:
                due = False  # the last fetch failed just now: do not hammer the host
            else:
                due = age is None or age >= self._ttl or (
                    (refresh or not self._keys) and age >= self._min_refresh)
            if due:
                await self._load(now)
            if not self._keys and self._failed_at is not None:
                raise ProviderError("fal's webhook keys (JWKS) could not be fetched",
                                    retryable=True, details={"provider": "fal"})
            return list(self._keys)

    async def _load(self, now: float) -> None:
        try:
            document = await self._fetch()
        except ProviderError:
            # Keep verifying with the keys we have (if any); try again after min_refresh.
            self._failed_at = now
            return
        self._failed_at = None
        self._fetched_at = now
        keys = parse_jwks(document)
        if keys:
            self._keys = keys


# --- status, results, webhook bodies --------------------------------------------------
def state_from_status(body: Mapping[str, Any]) -> RequestState:
    """A status answer's state. Only fal's three statuses are known."""
    status = body.get("status")
    if isinstance(status, str) and status in _STATES:
        return _STATES[status]
    raise ProviderError(f"fal answered an unknown status: {status!r}", retryable=True,
                        details={"provider": "fal"})


def _url_of(value: Any) -> tuple[str | None, str | None]:
    """(url, content_type) of a fal File object (`{"url": ..., "content_type": ...}`)."""
    if not isinstance(value, dict):
        return None, None
    url, content_type = value.get("url"), value.get("content_type")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None, None
    return url, content_type if isinstance(content_type, str) else None


def result_from_output(payload: Any) -> ProviderResult:
    """A model's output (`{"video": {"url", "content_type", ...}, ...}`) as a result."""
    video_url, content_type = _url_of(payload.get("video") if isinstance(payload, dict)
                                      else None)
    if video_url is None:
        return ProviderResult(ok=False, error="fal's result has no video URL")
    thumbnail_url, _ = _url_of(payload.get("thumbnail"))
    return ProviderResult(ok=True, video_url=video_url, video_content_type=content_type,
                          thumbnail_url=thumbnail_url)


def _detail_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if detail is not None:
        return json.dumps(detail, separators=(",", ":"))[:500]
    return ""


def result_from_response(status: int, body: Any, *, error_type: str | None = None,
                         text: str = "") -> ProviderResult:
    """The outcome of `GET response_url`, or ProviderError when it decides nothing yet.

    2xx: the model's output. 4xx with fal's `detail`: the request failed (a model's
    validation errors are 422). 5xx: failed only when fal names a request error
    (`error_type` / `X-Fal-Error-Type`, e.g. `request_timeout` after its own retries);
    otherwise it is a transient answer of fal's servers, as are 429 and "still in
    progress".
    """
    if 200 <= status < 300:
        return result_from_output(body)
    detail = _detail_text(body)
    error_type = error_type or (body.get("error_type") if isinstance(body, dict) else None)
    if status == 400 and "in progress" in detail.lower():
        raise ProviderError("fal's request is not finished yet", retryable=True,
                            code="not_finished", details={"provider": "fal"})
    if status == 429 or (status >= 500 and not error_type) or (status < 500 and not detail):
        raise error_for_status("fal", status, detail or text, submit=False)
    reason = " ".join(part for part in (str(error_type or ""), detail) if part)
    return ProviderResult(ok=False, error=f"fal {status}: {reason}"[:1000])


def event_from_webhook(body: bytes, request_id: str) -> WebhookEvent:
    """A verified webhook body (`{request_id, status: OK|ERROR, payload, error}`)."""
    try:
        document = json.loads(body)
    except ValueError:
        raise WebhookRejected("the webhook body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookRejected("the webhook body is not a JSON object")
    if document.get("request_id") != request_id:
        raise WebhookRejected("the webhook body names another request than its headers")
    status = document.get("status")
    if status == "OK" and document.get("payload") is not None:
        return WebhookEvent(request_id=request_id,
                            result=result_from_output(document["payload"]))
    if status in ("OK", "ERROR"):
        parts = [str(document.get(key) or "") for key in ("error", "payload_error")]
        parts.append(_detail_text(document.get("payload")))
        error = "; ".join(part for part in parts if part) or f"fal webhook status {status}"
        return WebhookEvent(request_id=request_id,
                            result=ProviderResult(ok=False, error=error[:1000]))
    raise WebhookRejected(f"the webhook has an unknown status: {status!r}")


# --- the adapter ---------------------------------------------------------------------
class FalProvider(HttpAdapter):
    """fal's queue API. `clock` (unix seconds) is for the webhook timestamp window."""

    name = "fal"
    supports_webhooks = True

    def __init__(self, config: RendioConfig, *, http: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, http)
        self.base_url = config.falai_base_url.rstrip("/")
        self.jwks_url = config.falai_webhook_jwks_url
        self.clock = clock
        self.jwks = JwksCache(self._fetch_jwks)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._key(self.config.falai_api_key, 'FALAI_API_KEY')}"}

    @staticmethod
    def _url(url: str | None, which: str) -> str:
        if not url:
            raise ProviderError(f"the fal request has no {which}", retryable=False,
                                details={"provider": "fal"})
        return url

    async def submit(self, model: Model, job: VideoJob, *,
                     webhook_url: str | None) -> ProviderRequest:
        if not model.provider_model_id:
            raise ModelUnavailable(f"model {model.id} has no provider model id",
                                   details={"model_id": str(model.id)})
        params = {"fal_webhook": webhook_url} if webhook_url else None
        response = await self._send(
            "POST", f"{self.base_url}/{model.provider_model_id.strip('/')}", submit=True,
            model_id=model.provider_model_id, headers=self._headers(), params=params,
            json=input_of(job))
        body = json_object(self.name, response)
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError("fal accepted the request but gave no request_id",
                                retryable=False, details={"provider": "fal"})

        def url(key: str) -> str | None:
            value = body.get(key)
            return value if isinstance(value, str) and value else None

        return ProviderRequest(request_id=request_id, status_url=url("status_url"),
                               response_url=url("response_url"), cancel_url=url("cancel_url"))

    async def state(self, request: ProviderRequest, model: Model) -> RequestState:
        response = await self._send("GET", self._url(request.status_url, "status_url"),
                                    headers=self._headers())
        return state_from_status(json_object(self.name, response))

    async def result(self, request: ProviderRequest, model: Model) -> ProviderResult:
        url = self._url(request.response_url, "response_url")
        try:
            response = await self.http.get(url, headers=self._headers())
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from exc
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return result_from_response(response.status_code, body,
                                    error_type=response.headers.get("x-fal-error-type"),
                                    text=error_text(response))

    async def cancel(self, request: ProviderRequest, model: Model) -> None:
        await self._send("PUT", self._url(request.cancel_url, "cancel_url"),
                         headers=self._headers(), ok=_CANCEL_SETTLED)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify (headers, window, signature) then parse; WebhookRejected on failure.

        ProviderError(retryable=True) when fal's JWKS cannot be fetched and no keys are
        cached: nothing can be verified, so the sender should try again later.
        """
        fields = webhook_fields(headers, now=self.clock())
        if not signature_matches(fields, body, await self.jwks.keys()):
            # Maybe fal rotated its keys since we fetched them.
            if not signature_matches(fields, body, await self.jwks.keys(refresh=True)):
                raise WebhookRejected("the webhook signature does not verify")
        return event_from_webhook(body, fields.request_id)

    async def _fetch_jwks(self) -> Any:
        response = await self._send("GET", self.jwks_url)
        return json_object(self.name, response)
