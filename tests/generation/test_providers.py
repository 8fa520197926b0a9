"""The real provider adapters over HTTP against the stack's fake fal and Runway (through
the session stack's gateway), one fake outcome at a time. Webhooks are received by a
small HTTP server of the test's own and verified with `parse_webhook`, which fetches the
fake's JWKS over HTTP like fal's."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from rendio_backend.config import RendioConfig
from rendio_backend.errors import ModelUnavailable, ProviderError
from rendio_backend.generation.media import is_mp4, thumbnail_from_video
from rendio_backend.generation.providers import (
    Provider,
    ProviderRequest,
    RequestState,
    WebhookRejected,
    provider_for,
)
from rendio_backend.local.fakes.providers import fal_url
from rendio_backend.models import JobStatus, Model, VideoJob
from tests.support.stack import RunningStack

VEO = "fal-ai/veo3.1"
VEO_I2V = "fal-ai/veo3.1/image-to-video"


class WebhookSink:
    """An HTTP server on a free local port that keeps every POST it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.changed:
                    sink.received.append((dict(self.headers.items()), body))
                    sink.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fal"

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    server = WebhookSink()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def config(stack: RunningStack) -> RendioConfig:
    return stack.config.rendio_config()


def _model(provider: str, model_id: str, category: str = "text-to-video") -> Model:
    return Model(id=uuid.uuid4(), name=model_id, category=category, cost_per_generation=1,
                 provider=provider, provider_model_id=model_id, is_featured=False,
                 is_available=True, created_at=datetime.now(UTC))


def _job(prompt: str, **settings: Any) -> VideoJob:
    # A unique prompt: the fake counts submissions per prompt (`submit-5xx=N`).
    return VideoJob(job_id=uuid.uuid4(), user_id=uuid.uuid4(), model_id=uuid.uuid4(),
                    prompt=f"{prompt} #{uuid.uuid4().hex[:8]}", settings=settings,
                    status=JobStatus.PENDING, credits_used=1, created_at=datetime.now(UTC))


def _run(config: RendioConfig, name: str,
         body: Callable[[Provider], Awaitable[None]]) -> None:
    async def main() -> None:
        provider = provider_for(name, config)
        try:
            await body(provider)
        finally:
            await provider.aclose()

    asyncio.run(main())


async def _until_done(provider: Provider, request: ProviderRequest, model: Model,
                      timeout: float = 10.0) -> list[RequestState]:
    seen: list[RequestState] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(await provider.state(request, model))
        if seen[-1] is not RequestState.QUEUED and seen[-1] is not RequestState.RUNNING:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"not done within {timeout} s: {seen}")


def _check_video(data: bytes) -> None:
    """A real H.264 MP4: it decodes, frame by frame, and makes a thumbnail."""
    assert is_mp4(data)
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(video=0))
    assert len(frames) >= 12 and (frames[0].width, frames[0].height) == (160, 96)
    thumbnail = Image.open(io.BytesIO(thumbnail_from_video(data)))
    assert thumbnail.format == "JPEG" and thumbnail.size == (160, 96)


def _inspect(base: str, request_id: str) -> dict[str, Any]:
    """The fake's own record of a request (its polls and webhook deliveries)."""
    response = httpx.get(f"{base}/_requests/{request_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


# --- fal ------------------------------------------------------------------------------
def test_fal_submit_poll_result_download(config: RendioConfig) -> None:
    model = _model("fal", VEO_I2V, "image-to-video")
    job = _job("a cat [fake:succeed-after=3]", duration="4s",
               image_url="https://example.invalid/cat.jpg")

    async def body(fal: Provider) -> None:
        request = await fal.submit(model, job, webhook_url=None)
        # fal serves a subpath's requests under the base app: the URLs are used as given.
        assert request.status_url and "image-to-video" not in request.status_url
        assert request.status_url.startswith(f"{config.falai_base_url}/fal-ai/veo3.1/")
        with pytest.raises(ProviderError) as early:
            await fal.result(request, model)
        assert early.value.retryable and early.value.code == "not_finished"
        states = await _until_done(fal, request, model)
        assert states == [RequestState.QUEUED, RequestState.RUNNING, RequestState.DONE]
        result = await fal.result(request, model)
        assert result.ok and result.video_url and result.thumbnail_url is None
        assert result.video_content_type == "video/mp4"
        async with httpx.AsyncClient() as http:
            video = await http.get(result.video_url)
        assert video.headers["content-type"] == "video/mp4"
        _check_video(video.content)

    _run(config, "fal", body)


def test_fal_webhook_after_latency(config: RendioConfig, sink: WebhookSink) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        started = time.monotonic()
        request = await fal.submit(model, _job("a dog [fake:latency-ms=300]"),
                                   webhook_url=sink.url)
        assert await fal.state(request, model) is RequestState.QUEUED
        [(headers, payload)] = await asyncio.to_thread(sink.wait, 1)
        assert time.monotonic() - started >= 0.3
        event = await fal.parse_webhook(headers, payload)
        assert event.request_id == request.request_id
        assert event.result.ok and event.result.video_url
        assert await fal.state(request, model) is RequestState.DONE
        assert (await fal.result(request, model)).video_url == event.result.video_url

    _run(config, "fal", body)


def test_fal_failure_by_result_and_webhook(config: RendioConfig, sink: WebhookSink) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        request = await fal.submit(model, _job("x [fake:fail][fake:latency-ms=0]"),
                                   webhook_url=sink.url)
        assert (await _until_done(fal, request, model))[-1] is RequestState.DONE
        result = await fal.result(request, model)  # COMPLETED, yet failed
        assert not result.ok and "422" in (result.error or "")
        [(headers, payload)] = await asyncio.to_thread(sink.wait, 1)
        event = await fal.parse_webhook(headers, payload)
        assert not event.result.ok and json.loads(payload)["status"] == "ERROR"

    _run(config, "fal", body)


def test_fal_submit_5xx_is_retryable_and_then_succeeds(config: RendioConfig) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        job = _job("flaky [fake:submit-5xx=2]")
        for _ in range(2):
            with pytest.raises(ProviderError) as caught:
                await fal.submit(model, job, webhook_url=None)
            assert caught.value.retryable and caught.value.details["status"] == 503
        assert (await fal.submit(model, job, webhook_url=None)).request_id
        with pytest.raises(ProviderError) as always:
            await fal.submit(model, _job("down [fake:submit-5xx]"), webhook_url=None)
        assert always.value.retryable

    _run(config, "fal", body)


@pytest.mark.parametrize(("status", "expected", "retryable"), [
    (404, ModelUnavailable, None), (410, ModelUnavailable, None),
    (429, ProviderError, True), (400, ProviderError, False), (422, ProviderError, False),
])
def test_fal_submit_answers(config: RendioConfig, status: int, expected: type[Exception],
                            retryable: bool | None) -> None:
    async def body(fal: Provider) -> None:
        with pytest.raises(expected) as caught:
            await fal.submit(_model("fal", VEO), _job(f"[fake:submit-status={status}]"),
                             webhook_url=None)
        if retryable is not None:
            error = caught.value
            assert isinstance(error, ProviderError) and error.retryable is retryable

    _run(config, "fal", body)


def test_fal_wrong_key_is_permanent(config: RendioConfig) -> None:
    wrong = config.model_copy(update={"falai_api_key": "not-the-key"})

    async def body(fal: Provider) -> None:
        with pytest.raises(ProviderError) as caught:
            await fal.submit(_model("fal", VEO), _job("hi"), webhook_url=None)
        assert not caught.value.retryable and caught.value.details["status"] == 401

    _run(wrong, "fal", body)


def test_fal_never_finishes_then_cancel(config: RendioConfig, sink: WebhookSink) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        request = await fal.submit(model, _job("stuck [fake:never]"), webhook_url=sink.url)
        states = [await fal.state(request, model) for _ in range(4)]
        assert states == [RequestState.QUEUED] + [RequestState.RUNNING] * 3
        await fal.cancel(request, model)
        await fal.cancel(request, model)  # twice: nothing left to cancel is fine
        result = await fal.result(request, model)
        assert not result.ok and "cancelled" in (result.error or "")
        await asyncio.sleep(0.3)
        assert sink.received == []

    _run(config, "fal", body)


def test_fal_cancel_after_completion_is_a_no_op(config: RendioConfig) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        request = await fal.submit(model, _job("[fake:latency-ms=0]"), webhook_url=None)
        await _until_done(fal, request, model)
        await fal.cancel(request, model)
        assert (await fal.result(request, model)).ok

    _run(config, "fal", body)


def test_fal_duplicate_webhook(config: RendioConfig, sink: WebhookSink) -> None:
    async def body(fal: Provider) -> None:
        request = await fal.submit(_model("fal", VEO),
                                   _job("[fake:duplicate-webhook][fake:latency-ms=0]"),
                                   webhook_url=sink.url)
        received = await asyncio.to_thread(sink.wait, 2)
        assert len(received) == 2 and received[0][1] == received[1][1]
        events = [await fal.parse_webhook(headers, payload) for headers, payload in received]
        assert {event.request_id for event in events} == {request.request_id}
        assert all(event.result.ok for event in events)
        deliveries = _inspect(config.falai_base_url, request.request_id)["deliveries"]
        assert [(d["copy"], d["status"]) for d in deliveries] == [(1, 200), (2, 200)]

    _run(config, "fal", body)


def test_fal_late_webhook(config: RendioConfig, sink: WebhookSink) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        started = time.monotonic()
        request = await fal.submit(model, _job("[fake:late-webhook=600]"), webhook_url=sink.url)
        [(headers, payload)] = await asyncio.to_thread(sink.wait, 1)
        assert time.monotonic() - started >= 0.6
        # Polls never saw it finish: only the (late) webhook tells the outcome.
        assert await fal.state(request, model) is RequestState.QUEUED
        assert await fal.state(request, model) is RequestState.RUNNING
        assert (await fal.parse_webhook(headers, payload)).result.ok

    _run(config, "fal", body)


@pytest.mark.parametrize("directive", ["bad-signature", "stale-webhook"])
def test_fal_forged_or_stale_webhooks_are_rejected(config: RendioConfig, sink: WebhookSink,
                                                   directive: str) -> None:
    async def body(fal: Provider) -> None:
        await fal.submit(_model("fal", VEO), _job(f"[fake:{directive}][fake:latency-ms=0]"),
                         webhook_url=sink.url)
        [(headers, payload)] = await asyncio.to_thread(sink.wait, 1)
        with pytest.raises(WebhookRejected):
            await fal.parse_webhook(headers, payload)

    _run(config, "fal", body)


def test_fal_status_5xx_is_retryable(config: RendioConfig) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        request = await fal.submit(model, _job("[fake:status-5xx=1][fake:succeed-after=1]"),
                                   webhook_url=None)
        with pytest.raises(ProviderError) as caught:
            await fal.state(request, model)
        assert caught.value.retryable
        assert await fal.state(request, model) is RequestState.DONE

    _run(config, "fal", body)


def test_fal_bad_media_and_a_provider_thumbnail(config: RendioConfig) -> None:
    model = _model("fal", VEO)

    async def body(fal: Provider) -> None:
        request = await fal.submit(model, _job("[fake:bad-media][fake:thumbnail]"
                                               "[fake:latency-ms=0]"), webhook_url=None)
        await _until_done(fal, request, model)
        result = await fal.result(request, model)
        assert result.ok and result.video_url and result.thumbnail_url
        async with httpx.AsyncClient() as http:
            video = await http.get(result.video_url)
            thumbnail = await http.get(result.thumbnail_url)
        assert video.headers["content-type"] == "video/mp4" and not is_mp4(video.content)
        assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"

    _run(config, "fal", body)


def test_fal_unknown_directive_is_refused(config: RendioConfig) -> None:
    async def body(fal: Provider) -> None:
        with pytest.raises(ProviderError) as caught:
            await fal.submit(_model("fal", VEO), _job("[fake:explode]"), webhook_url=None)
        assert not caught.value.retryable and "explode" in caught.value.message

    _run(config, "fal", body)


# --- Runway ---------------------------------------------------------------------------
def test_runway_submit_poll_result_download(config: RendioConfig) -> None:
    model = _model("runway", "gen4_turbo", "image-to-video")

    async def body(runway: Provider) -> None:
        assert not runway.supports_webhooks
        request = await runway.submit(
            model, _job("waves [fake:succeed-after=3]", duration="4s", aspect_ratio="16:9",
                        image_url="https://example.invalid/sea.jpg"), webhook_url=None)
        assert request.status_url == f"{config.runway_base_url}/v1/tasks/{request.request_id}"
        with pytest.raises(ProviderError) as early:
            await runway.result(request, model)
        assert early.value.code == "not_finished"
        states = await _until_done(runway, request, model)
        assert states == [RequestState.RUNNING, RequestState.DONE]  # PENDING was the 1st poll
        result = await runway.result(request, model)
        assert result.ok and result.video_url
        async with httpx.AsyncClient() as http:
            _check_video((await http.get(result.video_url)).content)

    _run(config, "runway", body)


def test_runway_failure_cancel_and_submit_errors(config: RendioConfig) -> None:
    model = _model("runway", "gen4_turbo")

    async def body(runway: Provider) -> None:
        failed = await runway.submit(model, _job("[fake:fail][fake:latency-ms=0]"),
                                     webhook_url=None)
        assert (await _until_done(runway, failed, model))[-1] is RequestState.FAILED
        result = await runway.result(failed, model)
        assert not result.ok and "INTERNAL.BAD_OUTPUT.CODE01" in (result.error or "")

        stuck = await runway.submit(model, _job("[fake:never]"), webhook_url=None)
        assert await runway.state(stuck, model) is RequestState.QUEUED
        await runway.cancel(stuck, model)
        assert await runway.state(stuck, model) is RequestState.CANCELLED
        assert not (await runway.result(stuck, model)).ok

        with pytest.raises(ProviderError) as flaky:
            await runway.submit(model, _job("[fake:submit-5xx]"), webhook_url=None)
        assert flaky.value.retryable
        with pytest.raises(ModelUnavailable):
            await runway.submit(model, _job("[fake:submit-status=404]"), webhook_url=None)
        with pytest.raises(WebhookRejected):
            await runway.parse_webhook({}, b"{}")

    _run(config, "runway", body)


def test_runway_requires_its_version_header(config: RendioConfig) -> None:
    response = httpx.post(f"{config.runway_base_url}/v1/text_to_video",
                          headers={"Authorization": f"Bearer {config.runway_api_key}"},
                          json={"model": "gen4_turbo", "promptText": "x"})
    assert response.status_code == 400 and "X-Runway-Version" in response.json()["error"]


def test_pika_is_unavailable(config: RendioConfig) -> None:
    async def body(pika: Provider) -> None:
        with pytest.raises(ModelUnavailable):
            await pika.submit(_model("pika", "pika-2"), _job("x"), webhook_url=None)

    _run(config, "pika", body)


def test_stack_config_points_the_providers_at_the_fakes(stack: RunningStack) -> None:
    config = stack.config.rendio_config()
    assert config.falai_base_url == fal_url(stack.config)
    assert config.falai_webhook_jwks_url.startswith(stack.config.api_url)
    assert config.runway_base_url.startswith(stack.config.api_url)
    assert config.falai_api_key and config.runway_api_key
    jwks = httpx.get(config.falai_webhook_jwks_url).json()
    assert [key["kty"] for key in jwks["keys"]] == ["OKP"]
