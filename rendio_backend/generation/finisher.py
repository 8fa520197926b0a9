"""The end of a job: its video and thumbnail into Storage and `complete_video_job`, or
`fail_video_job` and its refund.

One finisher serves the worker's poller and the webhook route, whichever learns of the
result first; both may run at once for one job. That is safe because every step is
idempotent: a job already final is left alone, uploads are upserts at paths fixed by
the job id (`videos/{user_id}/{job_id}.mp4`, `thumbnails/{user_id}/{job_id}.jpg`), so a
retry after a crash replaces rather than duplicates, and the SQL completes or fails
(and refunds) a job exactly once.

Errors: a permanent problem (the provider failed, the file is not an MP4, too large, a
4xx on download) fails the job. A transient one (timeouts, 5xx, Storage unreachable)
is raised as it is, `ProviderError(retryable=True)` or a `RendioError`, and the job
stays processing: the next poll, a webhook retry or, past the deadline, the sweeper
finishes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from urllib.parse import urlsplit

import httpx

from .._async.admin import AsyncRendioAdmin
from .._core import storage
from ..errors import InvalidRequest, ProviderError
from ..models import BucketSpec, JobStatus, VideoJob
from .events import job_event
from .providers.base import ProviderResult

log = logging.getLogger("rendio.generation")

# A hook awaited at named stages (see `worker.pause_from_env`): tests stop a worker there.
StageHook = Callable[[str, VideoJob], Awaitable[None]]

# Downloads from the provider's CDN: generous for a 50 MiB file, bounded for a stall.
DOWNLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
_OCTET_STREAM = ("", "application/octet-stream", "binary/octet-stream")
_ERROR_CHARS = 2000


class FinishOutcome(StrEnum):
    """What `finish` or `fail` did: the job's new state, or nothing (already final)."""

    COMPLETED = "completed"
    FAILED = "failed"
    ALREADY_FINAL = "already_final"


def _bucket(bucket_id: str, buckets: tuple[BucketSpec, ...]) -> BucketSpec:
    return next(spec for spec in buckets if spec.id == bucket_id)


def _permanent(message: str, code: str) -> ProviderError:
    return ProviderError(message, retryable=False, code=code)


class Finisher:
    """Completes or fails jobs with the service role; see the module's docstring."""

    def __init__(
        self,
        admin: AsyncRendioAdmin,
        *,
        http: httpx.AsyncClient | None = None,
        buckets: tuple[BucketSpec, ...] = storage.BUCKETS,
        pause: StageHook | None = None,
    ) -> None:
        self._admin = admin
        self._owns_http = http is None
        # CDNs redirect; the requests carry no credentials of ours, so following is safe.
        self._http = http or httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True)
        self._videos = _bucket(storage.VIDEOS_BUCKET, buckets)
        self._thumbnails = _bucket(storage.THUMBNAILS_BUCKET, buckets)
        self._pause = pause

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def finish(self, job: VideoJob, result: ProviderResult, *,
                     provider: str | None = None) -> FinishOutcome:
        """Store the result of a finished provider request and complete `job`, or fail it.

        Raises (job unchanged) only for transient problems; see the module docstring.
        """
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            return FinishOutcome.ALREADY_FINAL
        started = time.monotonic()
        if not result.ok:
            return await self.fail(job, "provider_failed", result.error or "no reason given",
                                   provider=provider, started=started)
        if not result.video_url:
            return await self.fail(job, "provider_failed", "the result has no video",
                                   provider=provider, started=started)
        from . import media  # PyAV and Pillow load when the first video arrives

        try:
            video = await self._download(result.video_url, self._videos,
                                         hint=result.video_content_type)
            if not media.is_mp4(video):
                raise _permanent("the provider's video is not an MP4", "invalid_video")
        except ProviderError as exc:
            if exc.retryable:
                raise
            return await self.fail(job, exc.code, exc.message, provider=provider,
                                   started=started)
        try:
            uploaded = await self._admin.upload_video(job.user_id, job.job_id, video)
            await self._stage("mid_upload", job)
            thumbnail = await self._thumbnail(job, result, video)
            thumbnail_path = None
            if thumbnail is not None:
                thumbnail_path = (await self._admin.upload_thumbnail(
                    job.user_id, job.job_id, thumbnail)).path
        except InvalidRequest as exc:  # Storage refused the file itself (size, type)
            return await self.fail(job, "storage_rejected", exc.message, provider=provider,
                                   started=started)
        await self._stage("before_complete", job)
        changed = await self._admin.complete_job(job.job_id, video_path=uploaded.path,
                                                 thumbnail_path=thumbnail_path)
        if not changed:
            await self._remove_if_failed(job, uploaded.path, thumbnail_path)
            job_event("finish_skipped", job, provider=provider, started=started,
                      reason="already_final")
            return FinishOutcome.ALREADY_FINAL
        job_event("completed", job, provider=provider, started=started, status="completed",
                  video_bytes=len(video), thumbnail=thumbnail_path is not None)
        return FinishOutcome.COMPLETED

    async def fail(self, job: VideoJob, reason: str, detail: str | None = None, *,
                   provider: str | None = None, started: float | None = None) -> FinishOutcome:
        """Fail `job` and refund it (once; a final job is left alone).

        `reason` is a short code; `detail` (e.g. the provider's own text) is kept in
        error_message, which clients cannot read: they see a generic failure.
        """
        message = f"{reason}: {detail}" if detail else reason
        failure = await self._admin.fail_job(job.job_id, message[:_ERROR_CHARS])
        if not failure.failed:
            return FinishOutcome.ALREADY_FINAL
        job_event("failed", job, provider=provider, started=started, status="failed",
                  reason=reason, credits_refunded=failure.credits_refunded,
                  level=logging.WARNING)
        return FinishOutcome.FAILED

    async def _remove_if_failed(self, job: VideoJob, video_path: str,
                                thumbnail_path: str | None) -> None:
        """Remove what we stored for a job that was failed meanwhile (its deadline passed
        while we uploaded): a failed job never completes, so nothing will ever point at
        those files. A job completed by another finisher keeps them: the paths are the
        job's own, so they are the very files it completed with."""
        current = await self._admin.get_job(job.job_id)
        if current.status is not JobStatus.FAILED:
            return
        removed = [f"{storage.VIDEOS_BUCKET}/{key}" for key in await self._admin.remove_objects(
            storage.VIDEOS_BUCKET, [video_path])]
        if thumbnail_path is not None:
            removed += [f"{storage.THUMBNAILS_BUCKET}/{key}" for key in
                        await self._admin.remove_objects(storage.THUMBNAILS_BUCKET,
                                                         [thumbnail_path])]
        job_event("orphans_removed", job, provider=None, reason="failed_while_storing",
                  files=removed)

    # --- steps -----------------------------------------------------------------------
    async def _stage(self, stage: str, job: VideoJob) -> None:
        if self._pause is not None:
            await self._pause(stage, job)

    async def _thumbnail(self, job: VideoJob, result: ProviderResult,
                         video: bytes) -> bytes | None:
        """The provider's JPEG when it gives a usable one, else the video's first frame.

        None (the job completes without one) when neither works: the video is what the
        user paid for.
        """
        if result.thumbnail_url:
            try:
                image = await self._download(result.thumbnail_url, self._thumbnails)
                if image.startswith(b"\xff\xd8\xff"):  # a JPEG, as the .jpg path promises
                    return image
            except ProviderError as exc:
                log.info("provider thumbnail unusable for job %s: %s", job.job_id, exc)
        from . import media

        try:
            # Decoding is CPU work: off the event loop, which serves other jobs meanwhile.
            return await asyncio.to_thread(media.thumbnail_from_video, video)
        except Exception as exc:  # any decoder failure: complete without a thumbnail
            log.warning("no thumbnail for job %s: %r", job.job_id, exc)
            return None

    async def _download(self, url: str, bucket: BucketSpec, *,
                        hint: str | None = None) -> bytes:
        """The file at `url`, streamed and capped at the bucket's size limit; its content
        type must be one the bucket allows (an octet-stream counts as the provider's
        `hint`)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise _permanent("the provider gave a non-HTTP URL", "download_failed")
        limit = bucket.file_size_limit
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise ProviderError(f"download answered {response.status_code}",
                                        retryable=True, code="download_failed")
                if response.is_error:
                    raise _permanent(f"download answered {response.status_code}",
                                     "download_failed")
                declared = response.headers.get("content-type", "")
                content_type = declared.split(";")[0].strip().lower()
                if content_type in _OCTET_STREAM and hint:
                    content_type = hint.lower()
                if content_type not in bucket.allowed_mime_types:
                    raise _permanent(f"unexpected content type {declared!r}",
                                     "invalid_content_type")
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    raise _permanent(f"the file is larger than {limit} bytes", "file_too_large")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise _permanent(f"the file is larger than {limit} bytes",
                                         "file_too_large")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:  # timeouts, resets, refused: try again later
            raise ProviderError(f"download failed: {type(exc).__name__}", retryable=True,
                                code="download_failed") from exc
        return b"".join(chunks)
