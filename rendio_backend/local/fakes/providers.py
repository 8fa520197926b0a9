"""Fake video providers on localhost, reached over HTTP exactly like the real ones.

The gateway serves a fake **fal** queue API at `/_fake/fal` and a fake **Runway** API at
`/_fake/runway`; `provider_settings(config)` is what a RendioConfig needs to use them
(`StackConfig.rendio_config()` includes it).

fal (`/_fake/fal`), as documented at https://docs.fal.ai/model-endpoints/queue:

- `POST /{model_id}?fal_webhook=<url>` with `Authorization: Key <FAKE_FAL_KEY>` → `{request_id,
  gateway_request_id, status_url, response_url, cancel_url, queue_position}`. Like fal,
  the URLs live under the model's app (its first two path segments: a subpath such as
  `/image-to-video` is not part of them), so a client must use them as given.
- `GET …/requests/{id}/status` → `IN_QUEUE` (first poll), `IN_PROGRESS`, `COMPLETED`;
  `GET …/requests/{id}` → the output `{"video": {url, content_type, file_name,
  file_size}}` (200), a model error (422 `{"detail": [...]}`) or 400 "Request is still
  in progress"; `PUT …/requests/{id}/cancel` → 202 CANCELLATION_REQUESTED, 400
  ALREADY_COMPLETED or 404 NOT_FOUND.
- Webhooks: POSTed to `fal_webhook` when the request finishes: `{request_id,
  gateway_request_id, status: OK|ERROR, payload, error}`, signed as fal signs them
  (`X-Fal-Webhook-*`, Ed25519 over `request_id\\nuser_id\\ntimestamp\\nsha256_hex(body)`)
  with the stack's key (`<state>/fakes/fal_webhook_key.pem`, made once), whose JWKS is
  `GET /.well-known/jwks.json`. A delivery answered 5xx or not at all is tried again
  (3 attempts); every attempt is recorded.
- `GET /_requests/{id}` (the fake's own, not fal's): a request's state and its webhook
  deliveries, for tests.

Runway (`/_fake/runway`): `POST /v1/text_to_video` and `/v1/image_to_video` (with
`Authorization: Bearer <FAKE_RUNWAY_KEY>` and `X-Runway-Version: 2024-11-06`) → `{id}`;
`GET /v1/tasks/{id}` → PENDING (first poll), RUNNING, SUCCEEDED with `output`, FAILED
with `failure` / `failureCode`, CANCELLED; `DELETE /v1/tasks/{id}` → 204.

Results are real media (`media.py`): `GET /files/{id}/video.mp4` (H.264) and
`/files/{id}/thumbnail.jpg` under each fake.

**Outcomes are chosen per request in the prompt** (fal's `prompt`, Runway's
`promptText`) with directives `[fake:NAME]` or `[fake:NAME=VALUE]`; several combine
(`[fake:fail][fake:succeed-after=3]` fails at the third poll). An unknown directive is
refused with 422, so a typo never passes silently.

| directive | effect |
| --- | --- |
| (none) | succeeds 100 ms after the submission |
| `latency-ms=N` | finishes N ms after the submission |
| `succeed-after=N` | finishes at its Nth status poll (not by time; its webhook is sent then) |
| `fail` | finishes as failed (fal: result 422, webhook ERROR; Runway: FAILED) |
| `never` | never finishes (status stays IN_QUEUE/IN_PROGRESS, no webhook) |
| `submit-5xx` / `submit-5xx=N` | submissions answer 503: all, or the first N of this prompt |
| `submit-status=CODE` | submissions answer CODE (404 / 410: the model is gone; 400, 401, 429…) |
| `status-5xx=N` | the first N status polls answer 500 |
| `duplicate-webhook` | the webhook is delivered twice |
| `late-webhook=N` | only a webhook, N ms (default 3000) after submission, tells the outcome |
| `bad-signature` | the webhook is signed with a key not in the JWKS |
| `stale-webhook` | the webhook's timestamp is 10 minutes old |
| `bad-media` | the video URL serves bytes that are not an MP4 |
| `thumbnail` | the fal result also has `thumbnail` (a JPEG), as some models give |

`late-webhook` is the webhook that arrives after the job timed out: status polls keep
answering IN_PROGRESS, so nothing but that webhook can finish the request.

State is kept in `<state>/fakes/providers.sqlite3`, so every gateway worker (and a
restarted gateway) sees the same requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..keys import b64url
from ._files import create_once, sqlite_transaction
from .media import sample_file

if TYPE_CHECKING:
    from ..config import LocalService, StackConfig

FAKE_FAL_KEY = "fake-fal-key-0123456789"
FAKE_RUNWAY_KEY = "fake-runway-key-0123456789"
FAKE_FAL_USER_ID = "fake-fal-user"
RUNWAY_VERSION = "2024-11-06"
DEFAULT_LATENCY_MS = 100
DEFAULT_LATE_WEBHOOK_MS = 3000
STALE_SECONDS = 600
# `submit-5xx` without a number: every submission of the prompt fails.
ALWAYS = 2**31 - 1
_DELIVERY_BACKOFF = (0.0, 0.5, 1.5)

_DIRECTIVE = re.compile(r"\[fake:([a-z0-9-]+)(?:=([^\]]*))?\]")
_FLAGS = {"fail", "never", "duplicate-webhook", "bad-signature", "stale-webhook",
          "bad-media", "thumbnail"}
# Directive with a number -> (field of Directives, the value when no number is given).
_NUMBERS: dict[str, tuple[str, int | None]] = {
    "latency-ms": ("latency_ms", None), "succeed-after": ("succeed_after", None),
    "submit-status": ("submit_status", None), "status-5xx": ("status_5xx", None),
    "submit-5xx": ("submit_5xx", ALWAYS),
    "late-webhook": ("late_webhook_ms", DEFAULT_LATE_WEBHOOK_MS),
}


# --- directives ----------------------------------------------------------------------
@dataclass(frozen=True)
class Directives:
    """What a prompt asks the fake to do (see the module docstring)."""

    latency_ms: int = DEFAULT_LATENCY_MS
    succeed_after: int | None = None
    fail: bool = False
    never: bool = False
    # The first N submissions of this prompt answer 503 (ALWAYS: all of them).
    submit_5xx: int = 0
    submit_status: int | None = None
    status_5xx: int = 0
    duplicate_webhook: bool = False
    late_webhook_ms: int | None = None
    bad_signature: bool = False
    stale_webhook: bool = False
    bad_media: bool = False
    thumbnail: bool = False


def parse_directives(prompt: str) -> Directives:
    """The directives of a prompt; ValueError names an unknown or malformed one."""
    values: dict[str, Any] = {}
    for name, raw in _DIRECTIVE.findall(prompt):
        if name in _FLAGS and not raw:
            values[name.replace("-", "_")] = True
            continue
        attribute, default = _NUMBERS.get(name, ("", None))
        number = int(raw) if raw.isdigit() else None if raw else default
        if not attribute or number is None or (
                attribute == "submit_status" and not 400 <= number <= 599):
            raise ValueError(f"unknown or malformed fake directive [fake:{name}"
                             f"{'=' + raw if raw else ''}]")
        values[attribute] = number
    return Directives(**values)


# --- the webhook key -----------------------------------------------------------------
def webhook_key(config: StackConfig) -> Ed25519PrivateKey:
    """The stack's fal webhook signing key (PKCS#8 PEM under the state dir, made once)."""

    def make() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    key = serialization.load_pem_private_key(
        create_once(fakes_dir(config) / "fal_webhook_key.pem", make), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def jwks_of(*keys: Ed25519PrivateKey) -> dict[str, Any]:
    """A JWKS document of the keys' public halves, shaped like fal's."""
    entries = []
    for key in keys:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        entries.append({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                        "kid": hashlib.sha256(raw).hexdigest()[:16],
                        "x": b64url(raw)})
    return {"keys": entries}


def sign_webhook(key: Ed25519PrivateKey, request_id: str, body: bytes, *,
                 timestamp: int | None = None,
                 user_id: str = FAKE_FAL_USER_ID) -> dict[str, str]:
    """The `X-Fal-Webhook-*` headers fal would send with `body` (signed by `key`)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    message = "\n".join((request_id, user_id, stamp, hashlib.sha256(body).hexdigest()))
    return {"X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": key.sign(message.encode()).hex()}


# --- settings ------------------------------------------------------------------------
def fakes_dir(config: StackConfig) -> Path:
    return config.state_dir / "fakes"


def fal_url(config: StackConfig) -> str:
    return f"{config.api_url}/_fake/fal"


def runway_url(config: StackConfig) -> str:
    return f"{config.api_url}/_fake/runway"


def provider_settings(config: StackConfig) -> dict[str, Any]:
    """RendioConfig fields pointing fal and Runway at the stack's fakes."""
    return {"falai_api_key": FAKE_FAL_KEY, "falai_base_url": fal_url(config),
            "falai_webhook_jwks_url": f"{fal_url(config)}/.well-known/jwks.json",
            "runway_api_key": FAKE_RUNWAY_KEY, "runway_base_url": runway_url(config)}


# --- state ---------------------------------------------------------------------------
@dataclass
class FakeRequest:
    """One submitted request (a fal request or a Runway task)."""

    id: str
    provider: str
    app: str
    model: str
    prompt: str
    created: float
    polls: int = 0
    cancelled: bool = False
    webhook_url: str | None = None
    webhook_claimed: bool = False
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def directives(self) -> Directives:
        return parse_directives(self.prompt)

    def finished(self, now: float) -> bool:
        """Whether the outcome exists (result served, webhook due)."""
        d = self.directives
        if self.cancelled or d.never:
            return False
        if d.late_webhook_ms is not None:
            return now >= self.created + d.late_webhook_ms / 1000
        if d.succeed_after is not None:
            return self.polls >= d.succeed_after
        return now >= self.created + d.latency_ms / 1000

    def shows_finished(self, now: float) -> bool:
        """Whether a status poll says so (never, for a late webhook)."""
        return self.finished(now) and self.directives.late_webhook_ms is None

    def webhook_delay(self) -> float | None:
        """Seconds from submission to the webhook when time decides, else None."""
        d = self.directives
        if d.never or (d.succeed_after is not None and d.late_webhook_ms is None):
            return None
        return (d.late_webhook_ms if d.late_webhook_ms is not None else d.latency_ms) / 1000


_COLUMNS = ("id", "provider", "app", "model", "prompt", "created", "polls", "cancelled",
            "webhook_url", "webhook_claimed", "deliveries")


class Store:
    """The fakes' requests in sqlite: every gateway worker sees the same ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("create table if not exists requests (id text primary key, "
                       "provider text not null, app text not null, model text not null, "
                       "prompt text not null, created real not null, polls integer not null, "
                       "cancelled integer not null, webhook_url text, "
                       "webhook_claimed integer not null, deliveries text not null, "
                       "status_5xx_left integer not null)")
            db.execute("create table if not exists submissions "
                       "(key text primary key, count integer not null)")

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self.path)

    @staticmethod
    def _row(row: tuple[Any, ...] | None) -> FakeRequest | None:
        if row is None:
            return None
        values = dict(zip(_COLUMNS, row, strict=True))
        values["cancelled"] = bool(values["cancelled"])
        values["webhook_claimed"] = bool(values["webhook_claimed"])
        values["deliveries"] = json.loads(values["deliveries"])
        return FakeRequest(**values)

    def count_submission(self, key: str) -> int:
        """How many times this prompt was submitted, this one included."""
        with self._connect() as db:
            db.execute("insert into submissions values (?, 1) on conflict (key) "
                       "do update set count = count + 1", (key,))
            return int(db.execute("select count from submissions where key = ?",
                                  (key,)).fetchone()[0])

    def create(self, request: FakeRequest) -> None:
        with self._connect() as db:
            db.execute("insert into requests values (?, ?, ?, ?, ?, ?, 0, 0, ?, 0, '[]', ?)",
                       (request.id, request.provider, request.app, request.model,
                        request.prompt, request.created, request.webhook_url,
                        request.directives.status_5xx))

    def get(self, request_id: str) -> FakeRequest | None:
        with self._connect() as db:
            return self._row(db.execute(f"select {', '.join(_COLUMNS)} from requests "
                                        "where id = ?", (request_id,)).fetchone())

    def poll(self, request_id: str) -> tuple[FakeRequest | None, bool]:
        """(the request after counting this poll, whether this poll must answer 5xx)."""
        with self._connect() as db:
            failing = db.execute("update requests set status_5xx_left = status_5xx_left - 1 "
                                 "where id = ? and status_5xx_left > 0",
                                 (request_id,)).rowcount == 1
            if not failing:
                db.execute("update requests set polls = polls + 1 where id = ?",
                           (request_id,))
            row = db.execute(f"select {', '.join(_COLUMNS)} from requests where id = ?",
                             (request_id,)).fetchone()
        return self._row(row), failing

    def cancel(self, request_id: str) -> None:
        with self._connect() as db:
            db.execute("update requests set cancelled = 1 where id = ?", (request_id,))

    def claim_webhook(self, request_id: str) -> bool:
        """True for the one caller that gets to deliver the request's webhook."""
        with self._connect() as db:
            return db.execute("update requests set webhook_claimed = 1 where id = ? "
                              "and webhook_claimed = 0 and webhook_url is not null",
                              (request_id,)).rowcount == 1

    def record_delivery(self, request_id: str, entry: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("update requests set deliveries = json_insert(deliveries, '$[#]', "
                       "json(?)) where id = ?", (json.dumps(entry), request_id))


def _detail(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


# --- the fakes -----------------------------------------------------------------------
class FakeProviders:
    """Both fakes, over one store; a LocalService (the gateway starts and stops it)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.store = Store(fakes_dir(config) / "providers.sqlite3")
        self.key = webhook_key(config)
        self.fal_base = fal_url(config)
        self.runway_base = runway_url(config)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.fal_app = self._fal_app()
        self.runway_app = self._runway_app()

    # LocalService: the gateway mounts `app` (fal) and `runway_app` (wrapped).
    @property
    def app(self) -> ASGIApp:
        return self.fal_app

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- shared steps ---------------------------------------------------------------
    async def _admit(self, provider: str, prompt: str) -> Directives | tuple[int, str]:
        """The prompt's directives, or (status, message) refusing this submission."""
        try:
            directives = parse_directives(prompt)
        except ValueError as exc:
            return 422, str(exc)
        if directives.submit_status is not None:
            return directives.submit_status, f"fake submit-status={directives.submit_status}"
        if directives.submit_5xx:
            key = hashlib.sha256(f"{provider}\n{prompt}".encode()).hexdigest()
            count = await run_in_threadpool(self.store.count_submission, key)
            if count <= directives.submit_5xx:
                return 503, "fake submit-5xx: the service is unavailable"
        return directives

    def _files(self, base: str, request_id: str) -> str:
        return f"{base}/files/{request_id}"

    async def file(self, request: Request) -> Response:
        found = await run_in_threadpool(self.store.get, request.path_params["id"])
        name = request.path_params["name"]
        if found is None or name not in ("video.mp4", "thumbnail.jpg"):
            return _detail(404, "Not Found")
        if name == "video.mp4" and found.directives.bad_media:
            return Response(b"<html>this is not a video</html>", media_type="video/mp4")
        data = await run_in_threadpool(sample_file, self.config.state_dir, name)
        return Response(data, media_type="video/mp4" if name == "video.mp4"
                        else "image/jpeg")

    # --- fal ------------------------------------------------------------------------
    def _fal_authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Key {FAKE_FAL_KEY}"

    def _fal_urls(self, found: FakeRequest) -> dict[str, str]:
        base = f"{self.fal_base}/{found.app}/requests/{found.id}"
        return {"status_url": f"{base}/status", "response_url": base,
                "cancel_url": f"{base}/cancel"}

    def _fal_output(self, found: FakeRequest) -> dict[str, Any]:
        files = self._files(self.fal_base, found.id)
        size = len(sample_file(self.config.state_dir, "video.mp4"))
        output: dict[str, Any] = {"video": {"url": f"{files}/video.mp4",
                                            "content_type": "video/mp4",
                                            "file_name": "video.mp4", "file_size": size}}
        if found.directives.thumbnail:
            output["thumbnail"] = {"url": f"{files}/thumbnail.jpg",
                                   "content_type": "image/jpeg", "file_name": "thumbnail.jpg"}
        return output

    @staticmethod
    def _fal_error() -> dict[str, Any]:
        return {"detail": [{"loc": ["body", "prompt"], "type": "fake_failure",
                            "msg": "the fake model failed, as [fake:fail] asked"}]}

    async def fal_submit(self, request: Request) -> Response:
        if not self._fal_authorised(request):
            return _detail(401, "Invalid Key authorization header")
        try:
            body = await request.json()
        except ValueError:
            return _detail(422, "the body is not JSON")
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(prompt, str) or not prompt:
            return _detail(422, [{"loc": ["body", "prompt"], "msg": "field required",
                                  "type": "value_error.missing"}])
        webhook_url = request.query_params.get("fal_webhook")
        if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
            return _detail(422, "fal_webhook must be an http(s) URL")
        admitted = await self._admit("fal", prompt)
        if isinstance(admitted, tuple):
            return _detail(*admitted)
        model = request.path_params["model"].strip("/")
        if not model:
            return _detail(404, "Application not found")
        found = FakeRequest(id=str(uuid.uuid4()), provider="fal",
                            app="/".join(model.split("/")[:2]), model=model, prompt=prompt,
                            created=time.time(), webhook_url=webhook_url)
        await run_in_threadpool(self.store.create, found)
        delay = found.webhook_delay()
        if webhook_url and delay is not None:
            self._spawn(self._webhook_at(found.id, found.created + delay))
        return JSONResponse({"request_id": found.id, "gateway_request_id": found.id,
                             **self._fal_urls(found), "queue_position": 0})

    async def _fal_request(self, request: Request, *, poll: bool = False
                           ) -> FakeRequest | Response:
        if not self._fal_authorised(request):
            return _detail(401, "Invalid Key authorization header")
        request_id = request.path_params["id"]
        if poll:
            found, failing = await run_in_threadpool(self.store.poll, request_id)
            if failing:
                return _detail(500, "fake status-5xx")
        else:
            found = await run_in_threadpool(self.store.get, request_id)
        if found is None or found.provider != "fal" or found.app != request.path_params["app"]:
            return JSONResponse({"status": "NOT_FOUND", "detail": "Request not found"},
                                status_code=404)
        return found

    async def fal_status(self, request: Request) -> Response:
        found = await self._fal_request(request, poll=True)
        if isinstance(found, Response):
            return found
        now = time.time()
        self._webhook_if_due(found, now)
        urls = self._fal_urls(found)
        if found.cancelled or found.shows_finished(now):
            return JSONResponse({"status": "COMPLETED", "response_url": urls["response_url"],
                                 "logs": [], "metrics": {"inference_time": 0.1}})
        if found.polls <= 1:
            return JSONResponse({"status": "IN_QUEUE", "queue_position": 0,
                                 "response_url": urls["response_url"]})
        return JSONResponse({"status": "IN_PROGRESS", "response_url": urls["response_url"],
                             "logs": []})

    async def fal_result(self, request: Request) -> Response:
        found = await self._fal_request(request)
        if isinstance(found, Response):
            return found
        now = time.time()
        self._webhook_if_due(found, now)
        if found.cancelled:
            return _detail(400, "Request was cancelled")
        if not found.finished(now):
            return _detail(400, "Request is still in progress")
        if found.directives.fail:
            return JSONResponse(self._fal_error(), status_code=422)
        return JSONResponse(await run_in_threadpool(self._fal_output, found))

    async def fal_cancel(self, request: Request) -> Response:
        found = await self._fal_request(request)
        if isinstance(found, Response):
            return found
        if found.finished(time.time()):
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        await run_in_threadpool(self.store.cancel, found.id)
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def fal_jwks(self, request: Request) -> Response:
        return JSONResponse(jwks_of(self.key))

    async def inspect(self, request: Request) -> Response:
        found = await run_in_threadpool(self.store.get, request.path_params["id"])
        if found is None:
            return _detail(404, "Request not found")
        return JSONResponse({"id": found.id, "provider": found.provider, "model": found.model,
                             "polls": found.polls, "cancelled": found.cancelled,
                             "finished": found.finished(time.time()),
                             "webhook_url": found.webhook_url,
                             "deliveries": found.deliveries})

    def _fal_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/jwks.json", self.fal_jwks, methods=["GET"]),
            Route("/files/{id}/{name}", self.file, methods=["GET"]),
            Route("/_requests/{id}", self.inspect, methods=["GET"]),
            Route("/{app:path}/requests/{id}/status", self.fal_status, methods=["GET"]),
            Route("/{app:path}/requests/{id}/cancel", self.fal_cancel, methods=["PUT"]),
            Route("/{app:path}/requests/{id}", self.fal_result, methods=["GET"]),
            Route("/{model:path}", self.fal_submit, methods=["POST"]),
        ])

    # --- fal webhooks ---------------------------------------------------------------
    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _webhook_if_due(self, found: FakeRequest, now: float) -> None:
        if found.webhook_url and not found.webhook_claimed and found.finished(now):
            self._spawn(self._deliver(found.id))

    async def _webhook_at(self, request_id: str, when: float) -> None:
        # A hair past `when`, so `finished()` agrees that the time has come.
        await asyncio.sleep(max(0.0, when - time.time()) + 0.005)
        await self._deliver(request_id)

    def _webhook_body(self, found: FakeRequest) -> bytes:
        document: dict[str, Any]
        if found.directives.fail:
            document = {"request_id": found.id, "gateway_request_id": found.id,
                        "status": "ERROR", "error": "Invalid status code: 422",
                        "payload": self._fal_error()}
        else:
            document = {"request_id": found.id, "gateway_request_id": found.id,
                        "status": "OK", "payload": self._fal_output(found), "error": None}
        return json.dumps(document).encode()

    async def _deliver(self, request_id: str) -> None:
        """Send the request's webhook, once (a claim in the store decides who sends)."""
        found = await run_in_threadpool(self.store.get, request_id)
        if found is None or found.cancelled or not found.finished(time.time()):
            return
        if not await run_in_threadpool(self.store.claim_webhook, request_id):
            return
        assert found.webhook_url is not None
        body = await run_in_threadpool(self._webhook_body, found)
        directives = found.directives
        for copy in range(2 if directives.duplicate_webhook else 1):
            key = Ed25519PrivateKey.generate() if directives.bad_signature else self.key
            stamp = int(time.time()) - (STALE_SECONDS if directives.stale_webhook else 0)
            headers = {"Content-Type": "application/json",
                       **sign_webhook(key, found.id, body, timestamp=stamp)}
            await self._post_webhook(found.id, found.webhook_url, body, headers, copy)

    async def _post_webhook(self, request_id: str, url: str, body: bytes,
                            headers: dict[str, str], copy: int) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=15.0)
        for attempt, pause in enumerate(_DELIVERY_BACKOFF, start=1):
            await asyncio.sleep(pause)
            entry: dict[str, Any] = {"copy": copy + 1, "attempt": attempt, "at": time.time()}
            try:
                response = await self._client.post(url, content=body, headers=headers)
                entry["status"] = response.status_code
            except httpx.HTTPError as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                response = None
            await run_in_threadpool(self.store.record_delivery, request_id, entry)
            if response is not None and response.status_code < 500:
                return

    # --- Runway ---------------------------------------------------------------------
    def _runway_refusal(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {FAKE_RUNWAY_KEY}":
            return JSONResponse({"error": "Invalid API key"}, status_code=401)
        if request.headers.get("x-runway-version") != RUNWAY_VERSION:
            return JSONResponse({"error": "X-Runway-Version must be " + RUNWAY_VERSION},
                                status_code=400)
        return None

    async def runway_create(self, request: Request) -> Response:
        refused = self._runway_refusal(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            body = None
        image_to_video = request.url.path.endswith("/image_to_video")
        if (not isinstance(body, dict) or not isinstance(body.get("model"), str)
                or not isinstance(body.get("promptText", ""), str)
                or (image_to_video and not isinstance(body.get("promptImage"), str))):
            return JSONResponse({"error": "Validation of body failed"}, status_code=400)
        prompt = body.get("promptText") or ""
        admitted = await self._admit("runway", prompt)
        if isinstance(admitted, tuple):
            return JSONResponse({"error": admitted[1]}, status_code=admitted[0])
        found = FakeRequest(id=str(uuid.uuid4()), provider="runway", app="v1",
                            model=body["model"], prompt=prompt, created=time.time())
        await run_in_threadpool(self.store.create, found)
        return JSONResponse({"id": found.id})

    async def runway_task(self, request: Request) -> Response:
        refused = self._runway_refusal(request)
        if refused is not None:
            return refused
        task_id = request.path_params["id"]
        if request.method == "DELETE":
            found = await run_in_threadpool(self.store.get, task_id)
            if found is None or found.provider != "runway":
                return JSONResponse({"error": "Task not found"}, status_code=404)
            if not found.finished(time.time()):
                await run_in_threadpool(self.store.cancel, task_id)
            return Response(status_code=204)
        found, failing = await run_in_threadpool(self.store.poll, task_id)
        if failing:
            return JSONResponse({"error": "fake status-5xx"}, status_code=500)
        if found is None or found.provider != "runway":
            return JSONResponse({"error": "Task not found"}, status_code=404)
        task: dict[str, Any] = {"id": found.id, "createdAt": time.strftime(
            "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(found.created))}
        if found.cancelled:
            task["status"] = "CANCELLED"
        elif found.shows_finished(time.time()):
            if found.directives.fail:
                task.update(status="FAILED", failureCode="INTERNAL.BAD_OUTPUT.CODE01",
                            failure="The fake task failed, as [fake:fail] asked.")
            else:
                task.update(status="SUCCEEDED",
                            output=[f"{self._files(self.runway_base, found.id)}/video.mp4"])
        elif found.polls <= 1:
            task["status"] = "PENDING"
        else:
            task.update(status="RUNNING", progress=0.5)
        return JSONResponse(task)

    def _runway_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/text_to_video", self.runway_create, methods=["POST"]),
            Route("/v1/image_to_video", self.runway_create, methods=["POST"]),
            Route("/v1/tasks/{id}", self.runway_task, methods=["GET", "DELETE"]),
            Route("/files/{id}/{name}", self.file, methods=["GET"]),
            Route("/_requests/{id}", self.inspect, methods=["GET"]),
        ])


def create_fake_provider_services(config: StackConfig) -> dict[str, LocalService]:
    """The gateway's services `fake_fal` and `fake_runway` (one shared store)."""
    from ..config import AppOnly

    fakes = FakeProviders(config)
    return {"fake_fal": fakes, "fake_runway": AppOnly(fakes.runway_app)}
