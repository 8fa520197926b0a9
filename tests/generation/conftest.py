"""Shared pieces of the pipeline tests: guests, workers (in a thread or as a `rendio
worker` process), waiting for a job to end, and what a job left in the ledger and in
Storage. Everything runs against the session's real stack and its fake fal at
`/_fake/fal` (reached over HTTP only, as the real fal would be)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from rendio_backend import AsyncRendioAdmin, RendioAdmin, RendioClient, RendioConfig
from rendio_backend.generation.worker import Worker, WorkerSettings, WorkerStats
from tests.support.stack import REPO, RunningStack, SqlRunner

VEO = uuid.UUID("8b87c271-f01c-550b-9e12-36cf851aae46")  # fal-ai/veo3.1, 4 credits
FINAL = ("completed", "failed")
# Seconds, not minutes: every lease, poll and backoff of a test worker.
FAST = WorkerSettings(concurrency=4, claim_lease=3.0, poll_interval=0.2, finish_lease=3.0,
                      idle_interval=0.05, heartbeat_interval=0.5, sweep_interval=0,
                      backoff_base=0.05, backoff_max=0.2, grace=2.0)


@pytest.fixture(scope="module")
def config(stack: RunningStack) -> RendioConfig:
    """The stack's settings, the fake providers' URLs and keys included."""
    return stack.config.rendio_config()


@pytest.fixture(scope="module")
def admin(config: RendioConfig) -> Iterator[RendioAdmin]:
    with RendioAdmin(config) as admin:
        admin.provision_storage()
        admin.seed_models()
        yield admin


@pytest.fixture
def empty_queue(admin: RendioAdmin, sql: SqlRunner) -> None:
    """No unfinished job of other tests: a worker here works on this test's jobs only
    (which its counts and timings assume). They are failed, so refunded: the ledger
    stays sound. Every fixture below that makes guests or workers asks for it."""
    for (job_id,) in sql("select job_id from public.video_jobs "
                         "where status in ('pending', 'processing')"):
        admin.fail_job(job_id, "left unfinished by an earlier test")


@dataclass
class Guest:
    client: RendioClient
    user_id: uuid.UUID

    def generate(self, prompt: str = "A lighthouse at dusk", **settings: Any) -> uuid.UUID:
        job = self.client.generate_video(VEO, prompt, {"duration": "4s", **settings})
        return job.job_id

    def balance(self) -> int:
        return self.client.get_balance().credits_remaining


@pytest.fixture
def new_guest(config: RendioConfig, admin: RendioAdmin, sql: SqlRunner,
              empty_queue: None) -> Iterator[Callable[..., Guest]]:
    """`new_guest(credits=20, in_flight=3)`: an anonymous user with that balance. After
    the test, whatever it did, the ledger must be sound."""
    clients: list[RendioClient] = []

    def new(credits: int = 20, in_flight: int = 3) -> Guest:
        client = RendioClient(config)
        clients.append(client)
        session = client.sign_in_anonymously()
        admin.add_credits(session.user_id, credits)
        if in_flight != 3:
            sql("update public.users set max_jobs_in_flight = %s where id = %s",
                in_flight, session.user_id)
        return Guest(client, session.user_id)

    yield new
    for client in clients:
        client.close()
    assert admin.verify_ledger() == []


@pytest.fixture
def guest(new_guest: Callable[..., Guest]) -> Guest:
    return new_guest()


# --- workers ---------------------------------------------------------------------------
class ThreadedWorker:
    """A `Worker` on its own event loop in a thread, as the CLI runs it in a process."""

    def __init__(self, config: RendioConfig, settings: WorkerSettings,
                 worker_id: str | None = None) -> None:
        self.config = config
        self.settings = settings
        self.worker_id = worker_id or f"test-{uuid.uuid4().hex[:8]}"
        self.stats: WorkerStats | None = None
        self.error: BaseException | None = None
        self._worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ThreadedWorker:
        self._thread.start()
        assert self._started.wait(10), "the worker did not start"
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc
            self._started.set()

    async def _main(self) -> None:
        async with AsyncRendioAdmin(self.config) as admin:
            self._worker = Worker(admin, settings=self.settings, worker_id=self.worker_id)
            self._loop = asyncio.get_running_loop()
            self._started.set()
            self.stats = await self._worker.run()

    def stop(self, timeout: float = 30.0) -> WorkerStats:
        if self._loop is not None and self._worker is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._worker.stop)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the worker did not stop"
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats


@pytest.fixture
def start_worker(config: RendioConfig,
                 empty_queue: None) -> Iterator[Callable[..., ThreadedWorker]]:
    """`start_worker(**settings)`: a worker in a thread with FAST settings changed by
    `settings`; stopped (gracefully) after the test."""
    workers: list[ThreadedWorker] = []

    def start(**changes: Any) -> ThreadedWorker:
        worker = ThreadedWorker(config, replace(FAST, **changes))
        workers.append(worker.start())
        return worker

    yield start
    for worker in workers:
        worker.stop()


@dataclass
class WorkerProcess:
    """`rendio worker` in a process of its own, its JSON log lines read as they come."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first log line containing `text` (lines read so far included)."""
        assert self.process.stderr is not None
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                raise AssertionError(f"the worker exited ({self.process.poll()}) before "
                                     f"{text!r}:\n" + "".join(self.lines[-20:]))
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout} s:\n" + "".join(self.lines[-20:]))

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup of any kind
        self.process.wait(10)


def worker_argv(*extra: str) -> list[str]:
    """`rendio worker` with the FAST pacing."""
    return [sys.executable, "-m", "rendio_cli.main", "worker", "--concurrency", "2",
            "--lease", str(FAST.claim_lease), "--poll-interval", str(FAST.poll_interval),
            "--finish-lease", str(FAST.finish_lease),
            "--idle-interval", str(FAST.idle_interval), "--sweep-interval", "0",
            "--backoff-max", str(FAST.backoff_max), "--grace", str(FAST.grace), *extra]


@pytest.fixture
def spawn_worker(config: RendioConfig,
                 empty_queue: None) -> Iterator[Callable[..., WorkerProcess]]:
    """`spawn_worker(*args, pause_at=None)`: `rendio worker` as a process (killed after
    the test if still running)."""
    spawned: list[WorkerProcess] = []

    def spawn(*args: str, pause_at: str | None = None) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RENDIO_", "SUPABASE_", "FALAI_"))}
        env.update(config.as_env())
        if pause_at is not None:
            env["RENDIO_WORKER_PAUSE_AT"] = pause_at
        process = subprocess.Popen(worker_argv(*args), cwd=REPO, env=env, text=True,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        spawned.append(WorkerProcess(process))
        return spawned[-1]

    yield spawn
    for worker in spawned:
        if worker.process.poll() is None:
            worker.kill()
        for pipe in (worker.process.stdout, worker.process.stderr):
            if pipe is not None:
                pipe.close()


# --- looking at jobs -------------------------------------------------------------------
def wait_for_job(admin: RendioAdmin, job_id: uuid.UUID, statuses: tuple[str, ...] = FINAL,
                 timeout: float = 30.0) -> Any:
    """The job once its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        job = admin.get_job(job_id)
        if job.status.value in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status.value} after {timeout} s")
        time.sleep(0.05)


def ledger_of(sql: SqlRunner, job_id: uuid.UUID) -> list[tuple[int, str]]:
    """The job's quota_log rows: (change, reason), oldest first."""
    return [(int(change), str(reason)) for change, reason in sql(
        "select change, reason from public.quota_log where job_id = %s order by version",
        job_id)]


def charged_once(cost: int = 4) -> list[tuple[int, str]]:
    return [(-cost, "video_generation")]


def refunded_once(cost: int = 4) -> list[tuple[int, str]]:
    return [(-cost, "video_generation"), (cost, "generation_failed_refund")]


def stored_objects(sql: SqlRunner, user_id: uuid.UUID, job_id: uuid.UUID) -> list[str]:
    """`bucket/name` of every Storage object of the job."""
    return sorted(f"{bucket}/{name}" for bucket, name in sql(
        "select bucket_id, name from storage.objects where name like %s",
        f"{user_id}/{job_id}%"))


def media_of(user_id: uuid.UUID, job_id: uuid.UUID) -> list[str]:
    """What a completed job has in Storage: one video, one thumbnail."""
    return [f"thumbnails/{user_id}/{job_id}.jpg", f"videos/{user_id}/{job_id}.mp4"]


def fake_request(stack: RunningStack, request_id: str) -> dict[str, Any]:
    """The fake fal's record of a request (its polls, cancellation, webhook deliveries)."""
    response = httpx.get(f"{stack.config.api_url}/_fake/fal/_requests/{request_id}",
                         timeout=10)
    response.raise_for_status()
    return dict(response.json())


def set_deadline(sql: SqlRunner, job_id: uuid.UUID, seconds: float) -> None:
    """Make the job's deadline `seconds` from now (tests cannot wait an hour)."""
    sql("update public.video_jobs set deadline_at = now() + make_interval(secs => %s) "
        "where job_id = %s", seconds, job_id)
