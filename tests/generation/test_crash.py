"""Crash safety: a `rendio worker` process killed with SIGKILL at each stage of a job
(RENDIO_WORKER_PAUSE_AT stops it there first), then a new worker or the sweeper. Every
job still ends exactly once: completed with one video and one thumbnail, or failed and
refunded once; the ledger stays sound (checked after each test by `new_guest`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from rendio_backend import JobStatus, RendioAdmin
from tests.generation.conftest import (
    Guest,
    ThreadedWorker,
    WorkerProcess,
    charged_once,
    ledger_of,
    media_of,
    refunded_once,
    set_deadline,
    stored_objects,
    wait_for_job,
)
from tests.support.stack import SqlRunner

# The crashed worker's leases are short, so the next worker need not wait long.
SHORT_LEASES = ("--lease", "1", "--finish-lease", "1")


def _kill_at(spawn_worker: Callable[..., WorkerProcess], stage: str, job_id: object,
             *args: str) -> None:
    worker = spawn_worker(*SHORT_LEASES, *args, pause_at=stage)
    paused = json.loads(worker.wait_for('"paused"'))
    assert paused["stage"] == stage and paused["job_id"] == str(job_id)
    worker.kill()


@pytest.mark.parametrize(("stage", "args", "left"), [
    # Claimed, never submitted: the lease expires, the job is claimed again.
    ("before_submit", (), ("pending", 1)),
    # Submitted, not recorded: submitted again (the first request's webhook finds no job).
    ("after_submit", (), ("pending", 1)),
    # Video stored, thumbnail not: finished again; the upload is replaced, not doubled.
    ("mid_upload", ("--no-webhooks",), ("processing", 1)),
    # Both stored, not completed: completed by the next worker.
    ("before_complete", ("--no-webhooks",), ("processing", 1)),
])
def test_a_worker_killed_at_any_stage_leaves_work_the_next_one_finishes_once(
    stage: str, args: tuple[str, ...], left: tuple[str, int], guest: Guest,
    spawn_worker: Callable[..., WorkerProcess], start_worker: Callable[..., ThreadedWorker],
    admin: RendioAdmin, sql: SqlRunner,
) -> None:
    job_id = guest.generate(f"Crash at {stage}")
    _kill_at(spawn_worker, stage, job_id, *args)
    crashed = admin.get_job(job_id)
    assert (crashed.status.value, crashed.attempts) == left
    if stage == "mid_upload":
        assert stored_objects(sql, guest.user_id, job_id) == [
            f"videos/{guest.user_id}/{job_id}.mp4"]
    start_worker(webhooks="--no-webhooks" not in args)
    job = wait_for_job(admin, job_id)
    assert job.status is JobStatus.COMPLETED
    # Claimed again only when it was still pending; a processing job is only polled.
    assert job.attempts == (2 if left[0] == "pending" else 1)
    assert stored_objects(sql, guest.user_id, job_id) == media_of(guest.user_id, job_id)
    assert ledger_of(sql, job_id) == charged_once()


def test_the_sweeper_fails_and_refunds_what_crashes_left_behind(
    guest: Guest, spawn_worker: Callable[..., WorkerProcess],
    start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin, sql: SqlRunner,
) -> None:
    # A job whose every claim died (the fifth claim is the last), ...
    poison = guest.generate("Kills every worker")
    sql("update public.video_jobs set attempts = 4 where job_id = %s", poison)
    _kill_at(spawn_worker, "before_submit", poison)
    # ... and one whose worker died mid-upload with nobody left to finish it in time.
    stranded = guest.generate("Stranded mid-upload")
    _kill_at(spawn_worker, "mid_upload", stranded, "--no-webhooks")
    set_deadline(sql, stranded, 0.5)
    assert wait_for_job(admin, poison, ("pending",)).attempts == 5
    # Sweeping (pg_cron, `rendio maintenance run` or a worker) once both leases expired.
    worker = start_worker(sweep_interval=0.2)
    failed = {job_id: wait_for_job(admin, job_id) for job_id in (poison, stranded)}
    assert failed[poison].error_message == "too_many_attempts"
    assert failed[stranded].error_message == "deadline_exceeded"
    for job_id, job in failed.items():
        assert job.status is JobStatus.FAILED
        assert ledger_of(sql, job_id) == refunded_once()
    # The video the killed worker stored is the failed job's stray: a sweep removes it.
    deadline = time.monotonic() + 10
    while stored_objects(sql, guest.user_id, stranded) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_objects(sql, guest.user_id, stranded) == []
    assert worker.stop().completed == 0
