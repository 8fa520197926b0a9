"""The worker end to end: the official client generates through the gateway, a worker
submits to the fake fal, the video and thumbnail land in Storage, and every failure is
refunded exactly once."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import av
import httpx
import pytest
from PIL import Image

from rendio_backend import (
    InvalidRequest,
    JobStatus,
    NotFound,
    RendioAdmin,
    RendioConfig,
    WorkerHeartbeat,
)
from rendio_backend.local._proc import wait_until
from rendio_backend.local.stack import LocalWorker, Stack
from tests.generation.conftest import (
    VEO,
    Guest,
    ThreadedWorker,
    WorkerProcess,
    charged_once,
    fake_request,
    ledger_of,
    media_of,
    refunded_once,
    set_deadline,
    stored_objects,
    wait_for_job,
)
from tests.support.stack import RunningStack, SqlRunner


def _decoded_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data), format="mp4") as container:
        return sum(1 for _ in container.decode(video=0))


def test_generate_to_completed_with_a_playable_video_and_thumbnail(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner, stack: RunningStack,
) -> None:
    job_id = guest.generate("A paper boat on a rainy street [fake:latency-ms=600]")
    assert guest.client.video_status(job_id).status is JobStatus.PENDING
    start_worker()
    assert wait_for_job(admin, job_id, ("processing", "completed")).status is \
        JobStatus.PROCESSING
    job = wait_for_job(admin, job_id)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.provider == "fal" and job.provider_job_id and job.provider_status_url

    status = guest.client.video_status(job_id)  # through the gateway, as the app asks
    assert status.status is JobStatus.COMPLETED and status.video_url and status.thumbnail_url
    video = httpx.get(status.video_url, timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert _decoded_frames(video.content) > 0
    thumbnail = httpx.get(status.thumbnail_url, timeout=30)
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).format == "JPEG"

    assert stored_objects(sql, guest.user_id, job_id) == media_of(guest.user_id, job_id)
    assert ledger_of(sql, job_id) == charged_once()
    assert guest.balance() == 16
    assert fake_request(stack, job.provider_job_id)["deliveries"][0]["status"] == 200


def test_the_providers_thumbnail_is_used_when_it_gives_one(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    stack: RunningStack,
) -> None:
    job_id = guest.generate("A heron [fake:thumbnail]")
    start_worker()
    job = wait_for_job(admin, job_id)
    assert job.status is JobStatus.COMPLETED
    provider_jpeg = httpx.get(f"{stack.config.api_url}/_fake/fal/files/"
                              f"{job.provider_job_id}/thumbnail.jpg", timeout=30).content
    assert guest.client.download_thumbnail(job_id) == provider_jpeg


def test_a_provider_failure_fails_the_job_and_refunds_it_once(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner,
) -> None:
    failed = guest.generate("A storm [fake:fail]")
    not_mp4 = guest.generate("A storm [fake:bad-media]")
    start_worker()
    for job_id in (failed, not_mp4):
        job = wait_for_job(admin, job_id)
        assert job.status is JobStatus.FAILED
        assert ledger_of(sql, job_id) == refunded_once()
        assert stored_objects(sql, guest.user_id, job_id) == []
        status = guest.client.video_status(job_id)
        # The client reads a generic reason; the provider's text stays server-side.
        assert status.failure is not None and status.failure.code == "generation_failed"
    assert admin.get_job(failed).error_message.startswith("provider_failed")
    assert admin.get_job(not_mp4).error_message.startswith("invalid_video")
    assert guest.balance() == 20


def test_5xx_on_submit_is_retried_then_gives_up_at_the_deadline(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner,
) -> None:
    # Prompts are unique per test run: the fake counts submissions per prompt.
    tag = uuid.uuid4().hex[:8]
    recovers = guest.generate(f"Twice 503 {tag} [fake:submit-5xx=2]")
    never = guest.generate(f"Always 503 {tag} [fake:submit-5xx]")
    set_deadline(sql, never, 1.5)
    worker = start_worker()
    assert wait_for_job(admin, recovers).status is JobStatus.COMPLETED
    job = wait_for_job(admin, never)
    assert job.status is JobStatus.FAILED
    assert job.error_message.startswith("provider_unavailable")
    assert ledger_of(sql, never) == refunded_once()
    assert ledger_of(sql, recovers) == charged_once()
    assert worker.stop().submitted == 1


def test_permanent_submit_errors_fail_and_a_gone_model_is_switched_off(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner,
) -> None:
    refused = guest.generate("Refused [fake:submit-status=400]")
    # A model of its own: a provider's 404 switches it off for everyone.
    model_id = uuid.uuid4()
    sql("insert into public.models (id, name, category, cost_per_generation, provider, "
        "provider_model_id) values (%s, %s, 'text-to-video', 2, 'fal', 'fal-ai/retired')",
        model_id, f"Retired {model_id}")
    gone = guest.client.generate_video(model_id, "Gone [fake:submit-status=404]").job_id
    start_worker()
    assert wait_for_job(admin, refused).error_message.startswith("submit_rejected")
    assert wait_for_job(admin, gone).error_message.startswith("model_unavailable")
    assert ledger_of(sql, refused) == refunded_once()
    assert ledger_of(sql, gone) == refunded_once(2)
    assert not admin.get_model(model_id).is_available
    assert admin.get_model(VEO).is_available


def test_a_job_that_never_finishes_is_failed_at_its_deadline_and_cancelled(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner, stack: RunningStack,
) -> None:
    job_id = guest.generate("Forever [fake:never]")
    set_deadline(sql, job_id, 1.5)
    start_worker()
    job = wait_for_job(admin, job_id)
    assert job.status is JobStatus.FAILED and job.error_message == "deadline_exceeded"
    assert ledger_of(sql, job_id) == refunded_once()
    assert job.provider_job_id is not None
    assert fake_request(stack, job.provider_job_id)["cancelled"]  # we stop paying for it


def test_a_transient_status_error_is_polled_again(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
) -> None:
    job_id = guest.generate("Flaky status [fake:status-5xx=2][fake:succeed-after=2]")
    start_worker(webhooks=False)
    assert wait_for_job(admin, job_id).status is JobStatus.COMPLETED


def test_two_workers_racing_over_the_same_jobs_finish_each_once(
    new_guest: Callable[..., Guest], start_worker: Callable[..., ThreadedWorker],
    admin: RendioAdmin, sql: SqlRunner,
) -> None:
    guest = new_guest(credits=40, in_flight=10)
    # Both wait on the queue first, so they race for each job as it comes.
    first = start_worker(concurrency=3, webhooks=False)
    second = start_worker(concurrency=3, webhooks=False)
    jobs = [guest.generate(f"Race {n} [fake:latency-ms=300]") for n in range(10)]
    for job_id in jobs:
        job = wait_for_job(admin, job_id)
        assert job.status is JobStatus.COMPLETED and job.attempts == 1  # claimed once
        assert stored_objects(sql, guest.user_id, job_id) == media_of(guest.user_id, job_id)
        assert ledger_of(sql, job_id) == charged_once()
    stats = [first.stop(), second.stop()]
    # Each job was submitted once and completed once, by one worker or the other.
    assert sum(s.submitted for s in stats) == 10 and sum(s.completed for s in stats) == 10


def test_heartbeats_show_live_workers_and_a_clean_stop(
    start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
) -> None:
    worker = start_worker()

    def row() -> WorkerHeartbeat | None:
        return next((w for w in admin.list_workers() if w.worker_id == worker.worker_id),
                    None)

    assert wait_until(lambda: row() is not None, 10)
    live = row()
    assert live is not None and live.stopped_at is None and live.concurrency == 4
    worker.stop()
    stopped = row()
    assert stopped is not None and stopped.stopped_at is not None


def test_sigterm_releases_the_lease_of_a_job_in_flight(
    guest: Guest, spawn_worker: Callable[..., WorkerProcess], admin: RendioAdmin,
) -> None:
    job_id = guest.generate("Interrupted")
    worker = spawn_worker("--lease", "300", pause_at="before_submit")
    worker.wait_for('"paused"')
    assert admin.get_job(job_id).attempts == 1
    worker.process.terminate()
    assert worker.process.wait(15) == 0
    worker.wait_for('"released"')
    job = admin.get_job(job_id)  # free at once, and the claim did not count
    assert job.status is JobStatus.PENDING and job.lease_owner is None and job.attempts == 0
    again = spawn_worker()
    assert wait_for_job(admin, job_id).status is JobStatus.COMPLETED
    again.process.terminate()
    assert again.process.wait(15) == 0


def test_once_submits_polls_and_exits(
    guest: Guest, config: RendioConfig, admin: RendioAdmin,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    job_id = guest.generate("Quick [fake:succeed-after=1]")
    worker = spawn_worker("--once", "--no-webhooks")
    out, _ = worker.process.communicate(timeout=60)
    assert worker.process.returncode == 0
    assert '"completed":1' in out and '"submitted":1' in out
    assert admin.get_job(job_id).status is JobStatus.COMPLETED


def test_dev_up_runs_a_worker_as_a_piece_of_the_stack(
    guest: Guest, stack: RunningStack, admin: RendioAdmin,
) -> None:
    piece = LocalWorker(stack.config)
    piece.start()
    try:
        job_id = guest.generate("Made by the stack's own worker")
        assert wait_for_job(admin, job_id).status is JobStatus.COMPLETED
        status = {s.name: s for s in Stack(stack.config).status()}
        assert status["worker"].running and status["worker"].pid == piece.pid()
    finally:
        assert piece.stop()
    assert piece.pid() is None
    assert "worker" not in {s.name for s in Stack(stack.config).status()}


def test_the_admin_calls_behind_the_pipeline(
    guest: Guest, admin: RendioAdmin, sql: SqlRunner,
) -> None:
    job_id = guest.generate("Bookkeeping")
    request_id = f"req-{uuid.uuid4()}"
    with pytest.raises(NotFound):
        admin.get_job_by_provider_request("fal", request_id)
    assert [job.job_id for job in admin.claim_jobs("w-a", limit=5, lease=60)] == [job_id]
    assert not admin.renew_lease(job_id, worker="w-b", lease=5)  # not w-b's
    assert admin.renew_lease(job_id, worker="w-a", lease=5)
    assert not admin.release_lease(job_id, worker="w-b")
    assert admin.release_lease(job_id, worker="w-a")
    released = admin.get_job(job_id)
    assert released.lease_owner is None and released.attempts == 0
    assert admin.claim_jobs("w-a", limit=5)
    assert admin.mark_processing(job_id, worker="w-a", provider="fal",
                                 provider_job_id=request_id)
    assert admin.get_job_by_provider_request("fal", request_id).job_id == job_id
    with pytest.raises(NotFound):
        admin.get_job_by_provider_request("runway", request_id)
    with pytest.raises(InvalidRequest):
        admin.renew_lease(job_id, worker="w-a", lease=0)
    with pytest.raises(InvalidRequest):
        admin.record_worker_heartbeat("", hostname="h", pid=1, concurrency=1)
    with pytest.raises(NotFound):
        admin.set_model_available(uuid.uuid4(), False)
    with pytest.raises(NotFound):
        admin.get_model(uuid.uuid4())
    assert admin.fail_job(job_id, "done with it").credits_refunded == 4
    assert ledger_of(sql, job_id) == refunded_once()
