"""The generation worker: claims paid jobs, submits them to their provider, polls them,
and finishes them through the `Finisher`.

Any number of workers run at once, on any machine, against the same Supabase: every
step goes through the SQL job functions with leases (`claim_pending_jobs` and
`claim_processing_jobs` use SKIP LOCKED), so a worker is stateless and a crash at any
point leaves work another worker (or the sweeper) finishes:

- claimed, not yet submitted: the lease expires, another worker claims the job again
  (attempts counts the claims; after five the sweeper fails and refunds it);
- submitted, not yet recorded (`mark_job_processing`): the same, the job is submitted
  again (the first request is orphaned at the provider; the job still ends once);
- processing: any poller, or the provider's webhook, finishes it; uploads are upserts
  keyed by the job id, so a finish interrupted mid-upload is redone, not duplicated;
- past its deadline: the poller or the sweeper fails it, and the SQL refunds it once;
  files a killed finisher stored for it are removed by the next sweep (stray files).

Transient provider errors (429, 5xx, timeouts) are retried with capped exponential
backoff inside the claim lease and the job's deadline; permanent ones fail the job;
`ModelUnavailable` also switches the model off in the catalog.

A worker stops gracefully on SIGTERM/SIGINT: it claims nothing more, waits up to
`grace` seconds for the steps in flight, then cancels what remains and releases those
leases so another worker takes the jobs at once. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx

from .._async.admin import AsyncRendioAdmin
from .._core import idempotency
from ..config import RendioConfig
from ..errors import ConfigurationError, ModelUnavailable, ProviderError, RendioError
from ..models import JobStatus, Model, VideoJob
from .catalog import ModelCache
from .events import job_event
from .finisher import Finisher, FinishOutcome, StageHook
from .providers.base import Provider, ProviderRequest, RequestState
from .providers.registry import provider_for

log = logging.getLogger("rendio.generation")

# The stages a worker may be told to pause at (RENDIO_WORKER_PAUSE_AT), in job order.
STAGES = ("before_submit", "after_submit", "mid_upload", "before_complete")
PAUSE_ENV = "RENDIO_WORKER_PAUSE_AT"

ProviderFactory = Callable[[str], Provider]


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker paces itself. Seconds throughout."""

    concurrency: int = 4
    # A claimed pending job is ours this long: enough to submit with retries.
    claim_lease: float = 300.0
    # Between two polls of one processing job (the poller's lease on it).
    poll_interval: float = 10.0
    # A job whose provider is done is ours this long while we store its video.
    finish_lease: float = 300.0
    # How long to sleep when there is nothing to claim.
    idle_interval: float = 1.0
    heartbeat_interval: float = 5.0
    # fail_stuck_jobs every so often (0: never; pg_cron or `rendio maintenance` do it).
    sweep_interval: float = 60.0
    # Submission retries: base * 2**n, capped, with jitter.
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # On a graceful stop, how long steps in flight may take before they are cancelled.
    grace: float = 20.0
    # `{webhook_base}/{provider}` is sent with each submission; None sends none (the
    # job is then finished by polling only). Default: the API's /functions/v1/webhooks.
    webhook_base: str | None = None
    webhooks: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1",
                                     code="invalid_configuration")


@dataclass
class WorkerStats:
    """What a worker did since it started."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    released: int = 0


def default_worker_id() -> str:
    """`host:pid:random`: unique per process, readable in the heartbeat table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def pause_from_env(environ: dict[str, str] | None = None) -> StageHook | None:
    """A hook that stops a worker forever at the stage named by RENDIO_WORKER_PAUSE_AT.

    For crash tests (and for looking at a job mid-flight): the worker logs
    `{"event": "paused", "stage": ..., "job_id": ...}` and waits there until it is
    killed, or cancelled by a graceful stop. Unset: no hook.
    """
    stage = (environ if environ is not None else dict(os.environ)).get(PAUSE_ENV)
    if not stage:
        return None
    if stage not in STAGES:
        raise ConfigurationError(f"{PAUSE_ENV} must be one of {', '.join(STAGES)}",
                                 code="invalid_configuration")

    async def pause(at: str, job: VideoJob) -> None:
        if at == stage:
            job_event("paused", job, provider=job.provider, stage=at)
            await asyncio.Event().wait()

    return pause


def _seconds_until(moment: datetime | None) -> float:
    if moment is None:
        return float("inf")
    return (moment - datetime.now(UTC)).total_seconds()


@dataclass
class _Queue:
    """One of the two queues a worker claims from, and when to ask it again."""

    claim: Callable[..., Coroutine[Any, Any, list[VideoJob]]]
    work: Callable[[VideoJob], Coroutine[Any, Any, None]]
    lease: float
    due: float = 0.0


class Worker:
    """One worker process's loop; see the module docstring. Use `run()` once."""

    def __init__(
        self,
        admin: AsyncRendioAdmin,
        *,
        settings: WorkerSettings | None = None,
        config: RendioConfig | None = None,
        providers: ProviderFactory | None = None,
        pause: StageHook | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.admin = admin
        self.settings = settings or WorkerSettings()
        self.config = config or admin.config
        self.worker_id = worker_id or default_worker_id()
        self.stats = WorkerStats()
        self._pause = pause
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
        self._provider_factory = providers or (
            lambda name: provider_for(name, self.config, http=self._http))
        self._providers: dict[str, Provider] = {}
        self._finisher = Finisher(admin, pause=pause)
        self._models = ModelCache(self.admin)
        self._tasks: dict[asyncio.Task[None], VideoJob] = {}
        # Processing jobs whose poll lease (the wait until their next poll) is ours:
        # released on a stop, so another worker polls them at once.
        self._waiting: dict[UUID, tuple[VideoJob, float]] = {}
        self._stopping = asyncio.Event()
        self._hurry = False
        self._wakeup = asyncio.Event()
        base = self.settings.webhook_base or f"{self.config.functions_url}/webhooks"
        self._webhook_base = base.rstrip("/") if self.settings.webhooks else None

    # --- lifecycle -------------------------------------------------------------------
    def stop(self) -> None:
        """Ask for a graceful stop (a second call skips the wait for steps in flight)."""
        if self._stopping.is_set():
            self._hurry = True
        self._stopping.set()
        self._wakeup.set()

    async def run(self, *, once: bool = False, handle_signals: bool = False) -> WorkerStats:
        """Work until `stop()` (or SIGTERM/SIGINT with `handle_signals`).

        `once`: submit every job pending now, poll every processing job once, finish
        those that are done, then return.
        """
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        heartbeat = asyncio.create_task(self._beat())
        log.info("worker started", extra={"event": "worker_started", "worker": self.worker_id,
                                          "concurrency": self.settings.concurrency})
        try:
            await self._loop(once)
        finally:
            self._stopping.set()
            await self._drain()
            await self._release_waiting()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._heartbeat(stopped=True)
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self._close()
            log.info("worker stopped", extra={"event": "worker_stopped",
                                              "worker": self.worker_id, **vars(self.stats)})
        return self.stats

    async def _loop(self, once: bool) -> None:
        settings = self.settings
        next_sweep = time.monotonic() + (settings.sweep_interval or float("inf"))
        queues = [_Queue(self.admin.claim_jobs, self._submit, settings.claim_lease),
                  _Queue(self.admin.claim_processing_jobs, self._poll, settings.poll_interval)]
        failures = 0
        while not self._stopping.is_set():
            self._wakeup.clear()
            claimed = 0
            pause = settings.idle_interval
            try:
                for queue in queues:
                    if once or time.monotonic() >= queue.due:
                        claimed += await self._claim(queue)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + settings.sweep_interval
                    await self._sweep()
                failures = 0
            except RendioError as exc:  # Supabase unreachable, say: back off, try again
                failures += 1
                pause = min(30.0, settings.idle_interval * 2 ** min(failures, 10))
                log.warning("claim failed: %s", exc, extra={"event": "claim_failed",
                                                           "worker": self.worker_id})
                if once:
                    raise
            if once and claimed == 0:
                if not self._tasks:
                    return
                await asyncio.wait(set(self._tasks))
                continue
            if not failures and len(self._tasks) < settings.concurrency:
                # Free slots: sleep until a queue is due (or a step ends).
                pause = min(pause, max(0.0, min(q.due for q in queues) - time.monotonic()))
                if pause == 0.0:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), pause)

    async def _claim(self, queue: _Queue) -> int:
        free = self.settings.concurrency - len(self._tasks)
        if free <= 0 or self._stopping.is_set():
            return 0  # still due: claimed as soon as a slot frees
        jobs = await queue.claim(self.worker_id, limit=free, lease=queue.lease)
        # A short batch means the queue is drained for now: ask again after an idle
        # pause, not at every wake-up (an idle worker costs a claim per idle_interval).
        queue.due = time.monotonic() + (0.0 if len(jobs) == free
                                         else self.settings.idle_interval)
        for job in jobs:
            task = asyncio.create_task(self._guard(job, queue.work))
            self._tasks[task] = job
        return len(jobs)

    async def _guard(self, job: VideoJob,
                     work: Callable[[VideoJob], Coroutine[Any, Any, None]]) -> None:
        """Run one step; on cancellation (a stop) release the job's lease."""
        try:
            await work(job)
        except asyncio.CancelledError:
            await self._release(job)
            raise
        except RendioError as exc:  # transient (Supabase, Storage): the lease expires
            log.warning("job step failed: %s", exc, extra={
                "event": "step_failed", "job_id": str(job.job_id), "worker": self.worker_id})
        except Exception:
            log.exception("job step crashed", extra={
                "event": "step_crashed", "job_id": str(job.job_id), "worker": self.worker_id})
        finally:
            self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._wakeup.set()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        pending = set(self._tasks)
        deadline = time.monotonic() + self.settings.grace
        while pending and not self._hurry and time.monotonic() < deadline:
            _, pending = await asyncio.wait(pending, timeout=0.1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _release_waiting(self) -> None:
        now = time.monotonic()
        waiting = [job for job, until in self._waiting.values() if until > now]
        self._waiting.clear()
        await asyncio.gather(*(self._release(job) for job in waiting))

    async def _release(self, job: VideoJob) -> None:
        try:
            if await self.admin.release_lease(job.job_id, worker=self.worker_id):
                self.stats.released += 1
                job_event("released", job, provider=job.provider, worker=self.worker_id)
        except RendioError as exc:  # the lease simply expires
            log.warning("could not release job %s: %s", job.job_id, exc)

    async def _close(self) -> None:
        for provider in self._providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()
        await self._finisher.aclose()
        await self._http.aclose()

    # --- heartbeat and sweeper -------------------------------------------------------
    async def _beat(self) -> None:
        while True:
            await self._heartbeat()
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def _heartbeat(self, *, stopped: bool = False) -> None:
        try:
            await self.admin.record_worker_heartbeat(
                self.worker_id, hostname=socket.gethostname(), pid=os.getpid(),
                concurrency=self.settings.concurrency, in_flight=len(self._tasks),
                jobs_completed=self.stats.completed, jobs_failed=self.stats.failed,
                stopped=stopped)
        except RendioError as exc:
            log.warning("heartbeat failed: %s", exc, extra={"event": "heartbeat_failed",
                                                           "worker": self.worker_id})

    async def _sweep(self) -> None:
        swept = await self.admin.fail_stuck_jobs()
        if swept:
            log.info("swept stuck jobs", extra={"event": "swept", "jobs": swept,
                                                "worker": self.worker_id})
        # A finisher killed between its upload and its cleanup leaves a failed job's
        # files behind; the next sweep, of any worker, removes them. Storage being down
        # is no reason to stop claiming: the next sweep tries again.
        try:
            strays = await self.admin.remove_stray_files()
        except RendioError as exc:
            log.warning("removing stray files failed: %s", exc, extra={
                "event": "strays_failed", "worker": self.worker_id})
            return
        if strays.files_removed:
            log.info("removed stray files", extra={
                "event": "strays_removed", "files": strays.files_removed,
                "worker": self.worker_id})

    # --- catalog and providers -------------------------------------------------------
    async def _model(self, model_id: UUID) -> Model | None:
        return await self._models.get(model_id)

    def _provider(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            provider = self._providers[name] = self._provider_factory(name)
        return provider

    def _webhook_url(self, provider: Provider) -> str | None:
        if self._webhook_base is None or not provider.supports_webhooks:
            return None
        return f"{self._webhook_base}/{provider.name}"

    async def _stage(self, stage: str, job: VideoJob) -> None:
        if self._pause is not None:
            await self._pause(stage, job)

    def _count(self, outcome: FinishOutcome) -> None:
        if outcome is FinishOutcome.COMPLETED:
            self.stats.completed += 1
        elif outcome is FinishOutcome.FAILED:
            self.stats.failed += 1

    async def _fail(self, job: VideoJob, reason: str, detail: str | None = None, *,
                    provider: str | None = None, started: float | None = None) -> None:
        self._count(await self._finisher.fail(job, reason, detail, provider=provider,
                                              started=started))

    # --- pending jobs: submit --------------------------------------------------------
    async def _submit(self, job: VideoJob) -> None:
        started = time.monotonic()
        job_event("claimed", job, provider=None, attempt=job.attempts, worker=self.worker_id)
        model = await self._model(job.model_id)
        if model is None:
            await self._fail(job, "model_missing", f"model {job.model_id} is not in the catalog",
                             started=started)
            return
        try:
            provider = self._provider(model.provider)
            await self._stage("before_submit", job)
            request = await self._submit_with_retries(provider, model, job, started)
        except ModelUnavailable as exc:
            # The provider retired the model: no new job should be charged for it.
            await self.admin.set_model_available(model.id, False)
            job_event("model_unavailable", job, provider=model.provider, model_id=str(model.id),
                      level=logging.WARNING)
            await self._fail(job, "model_unavailable", exc.message, provider=model.provider,
                             started=started)
            return
        except ProviderError as exc:  # permanent: the provider refused the request
            await self._fail(job, "submit_rejected", exc.message, provider=model.provider,
                             started=started)
            return
        except ConfigurationError as exc:
            # This worker cannot reach the provider (a missing key): leave the job to a
            # worker that can; after max attempts the sweeper fails and refunds it.
            log.error("cannot submit job %s: %s", job.job_id, exc, extra={
                "event": "submit_unconfigured", "job_id": str(job.job_id),
                "provider": model.provider, "worker": self.worker_id})
            return
        if request is None:
            return
        await self._stage("after_submit", job)
        if await self._record(job, provider, request):
            self.stats.submitted += 1
            job_event("submitted", job, provider=provider.name, started=started,
                      status="processing", request_id=request.request_id,
                      webhook=self._webhook_url(provider) is not None, worker=self.worker_id)
            return
        # Another worker owns the job now (our lease ran out) or it is final: do not
        # pay the provider for a second run.
        job_event("submit_abandoned", job, provider=provider.name, started=started,
                  request_id=request.request_id, level=logging.WARNING)
        with contextlib.suppress(Exception):
            await provider.cancel(request, model)

    async def _submit_with_retries(self, provider: Provider, model: Model, job: VideoJob,
                                   started: float) -> ProviderRequest | None:
        """The provider's request; None when the claim lease or the stop ran out first.

        Past the job's deadline the job is failed here (the sweeper would, later).
        """
        lease_ends = time.monotonic() + self.settings.claim_lease
        retries = 0
        while True:
            try:
                return await provider.submit(model, job, webhook_url=self._webhook_url(provider))
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                retries += 1
                delay = min(self.settings.backoff_max,
                            self.settings.backoff_base * 2 ** (retries - 1))
                delay = random.uniform(delay / 2, delay)  # no thundering herd
                if _seconds_until(job.deadline_at) <= delay:
                    await self._fail(job, "provider_unavailable", exc.message,
                                     provider=provider.name, started=started)
                    return None
                if time.monotonic() + delay >= lease_ends - 1.0:
                    job_event("submit_deferred", job, provider=provider.name, retries=retries,
                              error=exc.message, level=logging.WARNING)
                    return None  # the next claim retries (attempts counts it)
                job_event("submit_retry", job, provider=provider.name, retries=retries,
                          delay_s=round(delay, 2), error=exc.message, level=logging.WARNING)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    await self._release(job)
                    return None

    async def _record(self, job: VideoJob, provider: Provider,
                      request: ProviderRequest) -> bool:
        """mark_processing, retried on transient errors; a retry whose first attempt
        did land (the answer was lost) is recognised by the stored request id."""
        retries = 0
        while True:
            try:
                if await self.admin.mark_processing(
                        job.job_id, worker=self.worker_id, provider=provider.name,
                        provider_job_id=request.request_id, status_url=request.status_url,
                        response_url=request.response_url, cancel_url=request.cancel_url):
                    return True
                current = await self.admin.get_job(job.job_id)
                return current.provider_job_id == request.request_id
            except RendioError as exc:
                if not idempotency.should_retry(exc, retries):
                    raise
            retries += 1
            await asyncio.sleep(idempotency.add_jitter(idempotency.backoff_seconds(retries)))

    # --- processing jobs: poll and finish --------------------------------------------
    async def _poll(self, job: VideoJob) -> None:
        started = time.monotonic()
        self._waiting.pop(job.job_id, None)
        if len(self._waiting) > 10 * self.settings.concurrency:
            now = time.monotonic()
            self._waiting = {k: v for k, v in self._waiting.items() if v[1] > now}
        if job.status is not JobStatus.PROCESSING or not job.provider or not job.provider_job_id:
            await self._fail(job, "invalid_job", "processing without a provider request",
                             started=started)
            return
        model = await self._model(job.model_id)
        provider = self._provider(job.provider)
        request = ProviderRequest(request_id=job.provider_job_id,
                                  status_url=job.provider_status_url,
                                  response_url=job.provider_response_url,
                                  cancel_url=job.provider_cancel_url)
        if model is None or _seconds_until(job.deadline_at) <= 0:
            if model is not None:
                with contextlib.suppress(Exception):
                    await provider.cancel(request, model)
            await self._fail(job, "deadline_exceeded" if model else "model_missing",
                             provider=provider.name, started=started)
            return
        try:
            state = await provider.state(request, model)
            if state in (RequestState.QUEUED, RequestState.RUNNING):
                # Our lease is the wait until the next poll.
                self._waiting[job.job_id] = (job, time.monotonic() + self.settings.poll_interval)
                return
            self._waiting.pop(job.job_id, None)
            # Done one way or another: keep the job while its video is stored.
            if not await self.admin.renew_lease(job.job_id, worker=self.worker_id,
                                                lease=self.settings.finish_lease):
                return
            result = await provider.result(request, model)
            outcome = await self._finisher.finish(job, result, provider=provider.name)
        except ProviderError as exc:
            if not exc.retryable:
                await self._fail(job, "provider_failed", exc.message, provider=provider.name,
                                 started=started)
                return
            # Try again at the next poll, not after the long finish lease.
            with contextlib.suppress(RendioError):
                await self.admin.renew_lease(job.job_id, worker=self.worker_id,
                                             lease=self.settings.poll_interval)
            job_event("poll_retry", job, provider=provider.name, error=exc.message,
                      level=logging.WARNING)
            return
        self._count(outcome)
