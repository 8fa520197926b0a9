"""The providers' pure parts: fal webhook signatures and its JWKS cache, status and
result mapping, error classification, Runway's task mapping, media, the fakes'
directives. fal's JWKS host is stood in for by httpx.MockTransport (it is fal's server,
not ours); everything else is plain function calls."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from rendio_backend.config import RendioConfig
from rendio_backend.errors import (
    ConfigurationError,
    ModelUnavailable,
    ProviderError,
)
from rendio_backend.generation.media import is_mp4, thumbnail_from_video
from rendio_backend.generation.providers import (
    ProviderRequest,
    RequestState,
    WebhookRejected,
    provider_for,
)
from rendio_backend.generation.providers._http import error_for_status
from rendio_backend.generation.providers.fal import (
    FalProvider,
    JwksCache,
    event_from_webhook,
    parse_jwks,
    result_from_response,
    signature_matches,
    state_from_status,
    webhook_fields,
)
from rendio_backend.generation.providers.pika import PikaProvider
from rendio_backend.generation.providers.runway import (
    result_from_task,
    state_from_task,
    submission,
)
from rendio_backend.local.fakes.media import BACKGROUND, make_sample_jpeg, make_sample_mp4
from rendio_backend.local.fakes.providers import (
    ALWAYS,
    DEFAULT_LATE_WEBHOOK_MS,
    Directives,
    jwks_of,
    parse_directives,
    sign_webhook,
)
from rendio_backend.models import JobStatus, Model, VideoJob

NOW = 1_800_000_000


def _model(provider: str = "fal", model_id: str = "fal-ai/veo3.1",
           category: str = "text-to-video") -> Model:
    return Model(id=uuid.uuid4(), name="m", category=category, cost_per_generation=1,
                 provider=provider, provider_model_id=model_id, is_featured=False,
                 is_available=True, created_at=datetime.now(UTC))


def _job(prompt: str = "a cat", **settings: Any) -> VideoJob:
    return VideoJob(job_id=uuid.uuid4(), user_id=uuid.uuid4(), model_id=uuid.uuid4(),
                    prompt=prompt, settings=settings, status=JobStatus.PENDING,
                    credits_used=1, created_at=datetime.now(UTC))


def _webhook(key: Ed25519PrivateKey, request_id: str = "req-1", *, status: str = "OK",
             timestamp: int = NOW) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"request_id": request_id, "gateway_request_id": request_id,
                       "status": status, "error": None,
                       "payload": {"video": {"url": "https://cdn.example/v.mp4",
                                             "content_type": "video/mp4"}}}).encode()
    return sign_webhook(key, request_id, body, timestamp=timestamp), body


# --- fal webhook signatures ------------------------------------------------------------
def test_signature_over_the_documented_message() -> None:
    # Built by hand from fal's docs, not with the fake's signer: both sides must agree
    # with the documentation, not just with each other.
    key = Ed25519PrivateKey.generate()
    body = b'{"request_id": "r"}'
    message = f"r\nuser-9\n{NOW}\n{hashlib.sha256(body).hexdigest()}".encode()
    headers = {"X-Fal-Webhook-Request-Id": "r", "X-Fal-Webhook-User-Id": "user-9",
               "X-Fal-Webhook-Timestamp": str(NOW),
               "X-Fal-Webhook-Signature": key.sign(message).hex()}
    fields = webhook_fields(headers, now=NOW)
    assert signature_matches(fields, body, [key.public_key()])
    assert not signature_matches(fields, body + b" ", [key.public_key()])
    assert not signature_matches(fields, body, [Ed25519PrivateKey.generate().public_key()])


def test_signature_any_key_of_the_set_and_header_case() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    headers, body = _webhook(key)
    lowered = {name.lower(): value for name, value in headers.items()}
    fields = webhook_fields(lowered, now=NOW)
    assert signature_matches(fields, body, [other.public_key(), key.public_key()])


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamps_are_rejected(skew: int) -> None:
    headers, _ = _webhook(Ed25519PrivateKey.generate(), timestamp=NOW + skew)
    with pytest.raises(WebhookRejected, match="window"):
        webhook_fields(headers, now=NOW)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_inside_the_window_pass(skew: int) -> None:
    headers, _ = _webhook(Ed25519PrivateKey.generate(), timestamp=NOW + skew)
    assert webhook_fields(headers, now=NOW).request_id == "req-1"


@pytest.mark.parametrize("change", [
    {"X-Fal-Webhook-Signature": ""}, {"X-Fal-Webhook-Signature": "zz-not-hex"},
    {"X-Fal-Webhook-Timestamp": "12.5"}, {"X-Fal-Webhook-User-Id": ""},
])
def test_malformed_signature_headers_are_rejected(change: dict[str, str]) -> None:
    headers, _ = _webhook(Ed25519PrivateKey.generate())
    with pytest.raises(WebhookRejected):
        webhook_fields({**headers, **change}, now=NOW)


def test_parse_jwks_keeps_only_ed25519_keys() -> None:
    key = Ed25519PrivateKey.generate()
    document = jwks_of(key)
    document["keys"] += [{"kty": "RSA", "n": "x", "e": "AQAB"},
                         {"kty": "OKP", "crv": "Ed25519", "x": "!!"},
                         {"kty": "OKP", "crv": "X25519", "x": document["keys"][0]["x"]}]
    keys = parse_jwks(document)
    assert len(keys) == 1
    raw = keys[0].public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == document["keys"][0]["x"]
    assert parse_jwks({"nope": 1}) == [] and parse_jwks([]) == []


class _Jwks:
    """fal's JWKS host: serves the current key set and counts fetches."""

    def __init__(self, *keys: Ed25519PrivateKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.status = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(self.status, json=jwks_of(*self.keys))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fal(jwks: _Jwks, clock: _Clock | None = None) -> FalProvider:
    http = httpx.AsyncClient(transport=httpx.MockTransport(jwks.handler))
    config = RendioConfig(falai_webhook_jwks_url="https://jwks.example/.well-known/jwks.json")
    provider = FalProvider(config, http=http, clock=lambda: NOW)
    if clock is not None:
        provider.jwks = JwksCache(provider._fetch_jwks, clock=clock)
    return provider


def test_parse_webhook_verifies_then_parses() -> None:
    key = Ed25519PrivateKey.generate()
    jwks = _Jwks(key)
    headers, body = _webhook(key)

    async def run() -> None:
        fal = _fal(jwks)
        event = await fal.parse_webhook(headers, body)
        assert event.request_id == "req-1" and event.result.ok
        assert event.result.video_url == "https://cdn.example/v.mp4"
        await fal.parse_webhook(headers, body)  # a duplicate verifies the same way
        assert jwks.fetches == 1  # cached

    asyncio.run(run())


def test_unknown_key_refreshes_the_jwks_at_most_every_few_seconds() -> None:
    old, new, forger = (Ed25519PrivateKey.generate() for _ in range(3))
    jwks, clock = _Jwks(old), _Clock()

    async def run() -> None:
        fal = _fal(jwks, clock)
        await fal.parse_webhook(*_webhook(old))
        assert jwks.fetches == 1
        # A forged webhook: one refresh, then rejected.
        clock.now += 10
        with pytest.raises(WebhookRejected, match="does not verify"):
            await fal.parse_webhook(*_webhook(forger))
        assert jwks.fetches == 2
        # A flood of them right after does not become a flood of fetches.
        for _ in range(5):
            with pytest.raises(WebhookRejected):
                await fal.parse_webhook(*_webhook(forger))
        assert jwks.fetches == 2
        # fal rotates its key: the first webhook signed with it refreshes the set.
        jwks.keys = [new]
        clock.now += 10
        assert (await fal.parse_webhook(*_webhook(new))).result.ok
        assert jwks.fetches == 3

    asyncio.run(run())


def test_jwks_is_kept_at_most_a_day_and_survives_a_failed_fetch() -> None:
    key = Ed25519PrivateKey.generate()
    jwks, clock = _Jwks(key), _Clock()

    async def run() -> None:
        fal = _fal(jwks, clock)
        await fal.parse_webhook(*_webhook(key))
        clock.now += 24 * 3600 - 1
        await fal.parse_webhook(*_webhook(key))
        assert jwks.fetches == 1
        clock.now += 2
        jwks.status = 503  # fal's host is down: the cached keys still verify
        assert (await fal.parse_webhook(*_webhook(key))).result.ok
        assert jwks.fetches == 2

    asyncio.run(run())


def test_no_keys_at_all_is_a_retryable_error_not_a_rejection() -> None:
    jwks = _Jwks(Ed25519PrivateKey.generate())
    jwks.status = 500

    async def run() -> None:
        with pytest.raises(ProviderError) as caught:
            await _fal(jwks).parse_webhook(*_webhook(jwks.keys[0]))
        assert caught.value.retryable

    asyncio.run(run())


def test_stale_webhook_is_rejected_before_any_fetch() -> None:
    key = Ed25519PrivateKey.generate()
    jwks = _Jwks(key)

    async def run() -> None:
        with pytest.raises(WebhookRejected, match="window"):
            await _fal(jwks).parse_webhook(*_webhook(key, timestamp=NOW - 600))
        assert jwks.fetches == 0

    asyncio.run(run())


# --- fal status, results and webhook bodies ------------------------------------------
def test_fal_status_mapping() -> None:
    assert state_from_status({"status": "IN_QUEUE", "queue_position": 3}) is RequestState.QUEUED
    assert state_from_status({"status": "IN_PROGRESS"}) is RequestState.RUNNING
    # COMPLETED is only "done": the result decides success.
    assert state_from_status({"status": "COMPLETED"}) is RequestState.DONE
    with pytest.raises(ProviderError):
        state_from_status({"status": "EXPLODED"})


def test_fal_result_mapping() -> None:
    ok = result_from_response(200, {"video": {"url": "https://cdn/v.mp4",
                                              "content_type": "video/mp4"},
                                    "thumbnail": {"url": "https://cdn/t.jpg"}})
    assert ok.ok and ok.video_url == "https://cdn/v.mp4" and ok.thumbnail_url == "https://cdn/t.jpg"
    assert ok.video_content_type == "video/mp4"
    assert not result_from_response(200, {"video": {"url": "file:///etc/passwd"}}).ok
    assert not result_from_response(200, {"images": []}).ok
    failed = result_from_response(422, {"detail": [{"msg": "prompt refused"}]})
    assert not failed.ok and "prompt refused" in (failed.error or "")
    timed_out = result_from_response(504, {"detail": "took too long",
                                           "error_type": "request_timeout"})
    assert not timed_out.ok and "request_timeout" in (timed_out.error or "")
    assert not result_from_response(500, None, error_type="runner_disconnected").ok


@pytest.mark.parametrize(("status", "body"), [
    (400, {"detail": "Request is still in progress"}), (429, {"detail": "slow down"}),
    (500, {"detail": "Internal Server Error"}), (502, None), (503, None),
])
def test_fal_result_answers_that_decide_nothing_yet(status: int, body: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        result_from_response(status, body)
    assert caught.value.retryable


def test_fal_webhook_bodies() -> None:
    ok = event_from_webhook(json.dumps({"request_id": "r", "status": "OK", "payload": {
        "video": {"url": "https://cdn/v.mp4"}}}).encode(), "r")
    assert ok.result.ok and ok.result.video_url == "https://cdn/v.mp4"
    error = event_from_webhook(json.dumps({
        "request_id": "r", "status": "ERROR", "error": "Invalid status code: 422",
        "payload": {"detail": [{"msg": "bad prompt"}]}}).encode(), "r")
    assert not error.result.ok and "422" in (error.result.error or "")
    assert "bad prompt" in (error.result.error or "")
    unparsable = event_from_webhook(json.dumps({
        "request_id": "r", "status": "OK", "payload": None,
        "payload_error": "not JSON"}).encode(), "r")
    assert not unparsable.result.ok and unparsable.result.error == "not JSON"
    for body in (b"not json", b"[]", json.dumps({"request_id": "other", "status": "OK"}).encode(),
                 json.dumps({"request_id": "r", "status": "WHAT"}).encode()):
        with pytest.raises(WebhookRejected):
            event_from_webhook(body, "r")


# --- error classification -------------------------------------------------------------
@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_model_on_submit_is_unavailable(status: int) -> None:
    assert isinstance(error_for_status("fal", status, "", submit=True), ModelUnavailable)
    later = error_for_status("fal", status, "", submit=False)
    assert isinstance(later, ProviderError) and not later.retryable


@pytest.mark.parametrize(("status", "retryable"), [
    (408, True), (429, True), (500, True), (502, True), (503, True), (504, True),
    (400, False), (401, False), (403, False), (422, False),
])
def test_error_classification(status: int, retryable: bool) -> None:
    error = error_for_status("fal", status, "text", submit=True)
    assert isinstance(error, ProviderError) and error.retryable is retryable
    assert error.details["status"] == status and "text" in error.message


def test_fal_needs_its_key_only_to_call_fal() -> None:
    async def run() -> None:
        fal = FalProvider(RendioConfig())
        with pytest.raises(ConfigurationError, match="FALAI_API_KEY"):
            await fal.state(ProviderRequest(request_id="r", status_url="https://x/s"),
                            _model())
        await fal.aclose()

    asyncio.run(run())


# --- Runway ---------------------------------------------------------------------------
def test_runway_submission_mapping() -> None:
    path, body = submission(_model("runway", "gen4_turbo"),
                            _job("a dog", duration="8s", aspect_ratio="9:16", seed=7,
                                 generate_audio=False, resolution="720p"))
    assert path == "/v1/text_to_video"
    assert body == {"model": "gen4_turbo", "promptText": "a dog", "ratio": "720:1280",
                    "duration": 8, "seed": 7, "audio": False}
    path, body = submission(_model("runway", "gen4_turbo", "image-to-video"),
                            _job("move", image_url="https://img/x.jpg", ratio="1584:672",
                                 duration=5))
    assert path == "/v1/image_to_video"
    assert body["promptImage"] == "https://img/x.jpg" and body["ratio"] == "1584:672"
    assert body["duration"] == 5
    assert "ratio" not in submission(_model("runway"), _job(aspect_ratio="auto"))[1]


def test_runway_task_mapping() -> None:
    expected = {"PENDING": RequestState.QUEUED, "THROTTLED": RequestState.QUEUED,
                "RUNNING": RequestState.RUNNING, "SUCCEEDED": RequestState.DONE,
                "FAILED": RequestState.FAILED, "CANCELLED": RequestState.CANCELLED}
    for status, state in expected.items():
        assert state_from_task({"status": status}) is state
    with pytest.raises(ProviderError):
        state_from_task({"status": "NEW"})
    ok = result_from_task({"status": "SUCCEEDED", "output": ["https://cdn/o.mp4"]})
    assert ok.ok and ok.video_url == "https://cdn/o.mp4"
    assert not result_from_task({"status": "SUCCEEDED", "output": []}).ok
    failed = result_from_task({"status": "FAILED", "failure": "unsafe",
                               "failureCode": "SAFETY.INPUT.TEXT"})
    assert not failed.ok and failed.error == "runway: SAFETY.INPUT.TEXT: unsafe"
    assert not result_from_task({"status": "CANCELLED"}).ok
    with pytest.raises(ProviderError) as caught:
        result_from_task({"status": "RUNNING", "progress": 0.4})
    assert caught.value.retryable and caught.value.code == "not_finished"


# --- registry and Pika ----------------------------------------------------------------
def test_registry_picks_by_provider_name() -> None:
    async def run() -> None:
        config = RendioConfig()
        async with httpx.AsyncClient() as http:
            for name in ("fal", "runway", "pika"):
                provider = provider_for(name, config, http=http)
                assert provider.name == name
                await provider.aclose()
            assert not http.is_closed  # a shared client stays its owner's
        with pytest.raises(ModelUnavailable):
            provider_for("sora-direct", config)

    asyncio.run(run())


def test_pika_reports_unavailable() -> None:
    async def run() -> None:
        pika = PikaProvider()
        with pytest.raises(ModelUnavailable):
            await pika.submit(_model("pika"), _job(), webhook_url=None)
        with pytest.raises(WebhookRejected):
            await pika.parse_webhook({}, b"{}")

    asyncio.run(run())


def test_provider_settings_come_from_the_environment() -> None:
    config = RendioConfig.from_env(env_file=None, environ={
        "FALAI_BASE_URL": "https://queue.falrun.com", "FALAI_WEBHOOK_JWKS_URL": "https://k/j",
        "RUNWAY_API_KEY": "rk", "RUNWAY_BASE_URL": "https://api.runwayml.com"})
    assert config.falai_base_url == "https://queue.falrun.com"
    assert config.falai_webhook_jwks_url == "https://k/j"
    assert config.runway_api_key == "rk" and "rk" not in repr(config)
    assert config.runway_base_url == "https://api.runwayml.com"
    assert RendioConfig().falai_base_url == "https://queue.fal.run"


# --- media ----------------------------------------------------------------------------
def test_is_mp4() -> None:
    assert is_mp4(make_sample_mp4())
    assert is_mp4(make_sample_mp4()[:12])  # the head is enough
    assert not is_mp4(make_sample_jpeg())
    assert not is_mp4(b"")
    assert not is_mp4(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00")  # QuickTime .mov
    assert not is_mp4(b"<html>not a video</html>")


def test_thumbnail_from_the_fakes_mp4() -> None:
    jpeg = thumbnail_from_video(make_sample_mp4())
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (160, 96)
    # The first frame's background, give or take JPEG's loss.
    pixel = image.convert("RGB").getpixel((2, 2))
    assert isinstance(pixel, tuple)
    assert all(abs(a - b) < 12 for a, b in zip(pixel, BACKGROUND, strict=True))
    small = Image.open(io.BytesIO(thumbnail_from_video(make_sample_mp4(), max_side=80)))
    assert small.size == (80, 48)


@pytest.mark.parametrize("data", [b"", b"<html>", make_sample_jpeg(),
                                  make_sample_mp4()[:200]])
def test_thumbnail_of_something_else_is_invalid_media(data: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        thumbnail_from_video(data)
    assert caught.value.code == "invalid_media" and not caught.value.retryable


# --- the fakes' directives ------------------------------------------------------------
def test_fake_directives() -> None:
    assert parse_directives("a cat") == Directives()
    parsed = parse_directives("x [fake:succeed-after=2] [fake:fail][fake:submit-5xx=1] "
                              "[fake:duplicate-webhook][fake:latency-ms=200]")
    assert (parsed.succeed_after, parsed.fail, parsed.submit_5xx, parsed.duplicate_webhook,
            parsed.latency_ms) == (2, True, 1, True, 200)
    assert parse_directives("[fake:submit-5xx]").submit_5xx == ALWAYS
    assert parse_directives("[fake:late-webhook]").late_webhook_ms == DEFAULT_LATE_WEBHOOK_MS
    assert parse_directives("[fake:submit-status=410]").submit_status == 410
    for bad in ("[fake:explode]", "[fake:fail=1]", "[fake:latency-ms]",
                "[fake:submit-status=200]", "[fake:succeed-after=two]"):
        with pytest.raises(ValueError, match="fake directive"):
            parse_directives(bad)

