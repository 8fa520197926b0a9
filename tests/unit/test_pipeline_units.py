"""The pipeline's pure parts: the finisher's download checks (against an httpx transport
standing in for a provider's CDN), the JSON log lines, the pause hook's settings."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from rendio_backend import (
    AsyncRendioAdmin,
    BucketSpec,
    ConfigurationError,
    ProviderError,
    RendioConfig,
)
from rendio_backend.generation.events import JsonFormatter, job_event
from rendio_backend.generation.finisher import Finisher
from rendio_backend.generation.worker import STAGES, WorkerSettings, pause_from_env
from rendio_backend.models import JobStatus, VideoJob

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
SMALL = (BucketSpec(id="videos", file_size_limit=1000, allowed_mime_types=("video/mp4",)),
         BucketSpec(id="thumbnails", file_size_limit=100, allowed_mime_types=("image/jpeg",)))

Handler = Callable[[httpx.Request], httpx.Response]


def _download(handler: Handler, url: str = "https://cdn.example/v.mp4",
              hint: str | None = None) -> bytes:
    async def run() -> bytes:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http, \
                AsyncRendioAdmin() as admin:
            finisher = Finisher(admin, http=http, buckets=SMALL)
            return await finisher._download(url, SMALL[0], hint=hint)

    return asyncio.run(run())


def _fails(code: str, retryable: bool, handler: Handler, **kwargs: str) -> None:
    with pytest.raises(ProviderError) as caught:
        _download(handler, **kwargs)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_a_video_within_the_bucket_limit_downloads() -> None:
    body = MP4_HEAD + b"x" * 100
    assert _download(lambda r: httpx.Response(200, content=body,
                                              headers={"content-type": "video/mp4"})) == body
    # A CDN that says octet-stream: the provider's own content type decides.
    assert _download(lambda r: httpx.Response(200, content=body), hint="video/mp4") == body


def test_downloads_are_refused_or_retried_as_they_deserve() -> None:
    big = b"x" * 1001
    _fails("file_too_large", False, lambda r: httpx.Response(
        200, content=big, headers={"content-type": "video/mp4"}))

    async def chunks() -> AsyncIterator[bytes]:
        yield big[:600]
        yield big[600:]

    # Streamed past the limit without a Content-Length: stopped all the same.
    _fails("file_too_large", False, lambda r: httpx.Response(
        200, content=chunks(), headers={"content-type": "video/mp4"}))
    _fails("invalid_content_type", False, lambda r: httpx.Response(
        200, content=b"<html>", headers={"content-type": "text/html"}))
    _fails("download_failed", False, lambda r: httpx.Response(404))
    _fails("download_failed", True, lambda r: httpx.Response(503))
    _fails("download_failed", True, lambda r: httpx.Response(429))

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    _fails("download_failed", True, unreachable)
    _fails("download_failed", False, lambda r: httpx.Response(200), url="file:///etc/passwd")


def test_job_transitions_are_one_json_line_each() -> None:
    job = VideoJob(job_id=uuid.uuid4(), user_id=uuid.uuid4(), model_id=uuid.uuid4(),
                   prompt="p", status=JobStatus.PROCESSING, credits_used=4, provider="fal",
                   created_at=datetime.now(UTC))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("rendio.generation")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        job_event("completed", job, provider=None, started=0.0, status="completed")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["event"] == "completed" and line["job_id"] == str(job.job_id)
    assert line["provider"] == "fal" and line["duration_ms"] > 0 and "message" not in line


def test_the_pause_hook_and_settings_are_checked() -> None:
    assert pause_from_env({}) is None
    assert all(pause_from_env({"RENDIO_WORKER_PAUSE_AT": stage}) for stage in STAGES)
    with pytest.raises(ConfigurationError):
        pause_from_env({"RENDIO_WORKER_PAUSE_AT": "whenever"})
    with pytest.raises(ConfigurationError):
        WorkerSettings(concurrency=0)


def test_settings_travel_to_a_worker_process_through_its_environment() -> None:
    config = RendioConfig(supabase_url="https://example.supabase.co", anon_key="sb_publishable_x",
                          service_role_key="sb_secret_y", falai_api_key="k",
                          falai_base_url="http://127.0.0.1:1/_fake/fal",
                          apple_root_certificates=("a.der", "b.der"), timeout=12.5)
    assert RendioConfig.from_env(env_file=None, environ=config.as_env()) == config
