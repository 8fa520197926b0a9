"""`POST /functions/v1/webhooks/fal` through the gateway: the fake fal signs and delivers
webhooks as fal does; the route verifies first, then finishes the job with the same
finisher as the worker's poller. Workers here poll slowly, so what finishes a job is
the webhook unless a test says otherwise."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rendio_backend import JobStatus, RendioAdmin
from rendio_backend.local.fakes.providers import sign_webhook, webhook_key
from tests.generation.conftest import (
    Guest,
    ThreadedWorker,
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

SLOW_POLLS = 60.0  # longer than any test: only a webhook can finish the job


@pytest.fixture
def webhook(stack: RunningStack) -> Callable[..., httpx.Response]:
    """`webhook(request_id, document, headers=None)`: POST a webhook signed with the
    fake fal's key (or with the given headers)."""

    def post(request_id: str, document: dict[str, Any],
             headers: dict[str, str] | None = None) -> httpx.Response:
        body = json.dumps(document).encode()
        signed = headers if headers is not None else sign_webhook(
            webhook_key(stack.config), request_id, body)
        return httpx.post(f"{stack.config.api_url}/functions/v1/webhooks/fal", content=body,
                          headers={"Content-Type": "application/json", **signed}, timeout=30)

    return post


def _deliveries(stack: RunningStack, request_id: str, count: int,
                timeout: float = 15.0) -> list[dict[str, Any]]:
    """The fake's first `count` webhook deliveries of a request, once made."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries: list[dict[str, Any]] = fake_request(stack, request_id)["deliveries"]
        if len(deliveries) >= count:
            return deliveries
        assert time.monotonic() < deadline, f"{len(deliveries)} of {count} deliveries"
        time.sleep(0.05)


def _error_document(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "gateway_request_id": request_id, "status": "ERROR",
            "error": "Invalid status code: 500", "payload": None}


def test_a_webhook_completes_the_job_before_any_poll_would(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner, stack: RunningStack,
) -> None:
    job_id = guest.generate("A kite over dunes")
    worker = start_worker(poll_interval=SLOW_POLLS)
    job = wait_for_job(admin, job_id, timeout=15)
    assert job.status is JobStatus.COMPLETED
    assert stored_objects(sql, guest.user_id, job_id) == media_of(guest.user_id, job_id)
    assert [d["status"] for d in _deliveries(stack, job.provider_job_id, 1)] == [200]
    assert worker.stop().completed == 0  # the webhook did it


def test_duplicate_and_out_of_order_webhooks_change_nothing(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner, stack: RunningStack, webhook: Callable[..., httpx.Response],
) -> None:
    job_id = guest.generate("Two moons [fake:duplicate-webhook]")
    start_worker(poll_interval=SLOW_POLLS)
    job = wait_for_job(admin, job_id, timeout=15)
    assert job.status is JobStatus.COMPLETED
    request_id = job.provider_job_id
    assert [d["status"] for d in _deliveries(stack, request_id, 2)] == [200, 200]
    # A failure arriving after the success (retries cross): still completed, no refund.
    late = webhook(request_id, _error_document(request_id))
    assert late.status_code == 200 and late.json()["outcome"] == "already_final"
    # A request no job recorded (lost with a crashed worker): acknowledged, ignored.
    stray = str(uuid.uuid4())
    unknown = webhook(stray, _error_document(stray))
    assert unknown.status_code == 200 and unknown.json()["outcome"] == "unknown_request"
    after = admin.get_job(job_id)
    assert after.status is JobStatus.COMPLETED and after.completed_at == job.completed_at
    assert ledger_of(sql, job_id) == charged_once()
    assert stored_objects(sql, guest.user_id, job_id) == media_of(guest.user_id, job_id)


def test_a_late_webhook_after_the_timeout_changes_nothing(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner, stack: RunningStack,
) -> None:
    job_id = guest.generate("Slow tide [fake:late-webhook=2500]")
    set_deadline(sql, job_id, 1.0)
    # The sweeper times the job out; the provider still answers, late.
    start_worker(poll_interval=SLOW_POLLS, sweep_interval=0.2)
    job = wait_for_job(admin, job_id, timeout=15)
    assert job.status is JobStatus.FAILED and job.error_message == "deadline_exceeded"
    assert [d["status"] for d in _deliveries(stack, job.provider_job_id, 1)] == [200]
    assert admin.get_job(job_id).status is JobStatus.FAILED
    assert ledger_of(sql, job_id) == refunded_once()
    assert stored_objects(sql, guest.user_id, job_id) == []


@pytest.mark.parametrize("directive", ["bad-signature", "stale-webhook"])
def test_a_bad_or_stale_signature_is_401_and_changes_nothing(
    directive: str, guest: Guest, start_worker: Callable[..., ThreadedWorker],
    admin: RendioAdmin, sql: SqlRunner, stack: RunningStack,
) -> None:
    job_id = guest.generate(f"Forged [fake:{directive}]")
    slow = start_worker(poll_interval=SLOW_POLLS)
    job = wait_for_job(admin, job_id, ("processing",))
    assert [d["status"] for d in _deliveries(stack, job.provider_job_id, 1)] == [401]
    assert admin.get_job(job_id).status is JobStatus.PROCESSING
    assert stored_objects(sql, guest.user_id, job_id) == []
    slow.stop()
    start_worker()  # polling finds the real outcome
    assert wait_for_job(admin, job_id).status is JobStatus.COMPLETED
    assert ledger_of(sql, job_id) == charged_once()


def test_unsigned_or_forged_webhooks_are_refused(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    webhook: Callable[..., httpx.Response], stack: RunningStack,
) -> None:
    job_id = guest.generate("Guarded [fake:never]")
    start_worker(poll_interval=SLOW_POLLS)
    request_id = wait_for_job(admin, job_id, ("processing",)).provider_job_id
    document = _error_document(request_id)
    unsigned = webhook(request_id, document, headers={})
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "invalid_signature"
    body = json.dumps(document).encode()
    signed = sign_webhook(webhook_key(stack.config), request_id, body)
    other_request = dict(signed, **{"X-Fal-Webhook-Request-Id": str(uuid.uuid4())})
    stale = sign_webhook(webhook_key(stack.config), request_id, body,
                         timestamp=int(time.time()) - 600)
    for headers in (other_request, stale):
        assert webhook(request_id, document, headers=headers).status_code == 401
    assert admin.get_job(job_id).status is JobStatus.PROCESSING  # nothing changed
    # The genuine one fails it (and refunds it once); a replay of it does nothing.
    first = webhook(request_id, document, headers=signed)
    assert first.status_code == 200 and first.json()["outcome"] == "failed"
    replay = webhook(request_id, document, headers=signed)
    assert replay.status_code == 200 and replay.json()["outcome"] == "already_final"
    assert admin.get_job(job_id).error_message.startswith("provider_failed")


def test_webhook_and_poller_finishing_at_once_complete_the_job_once(
    guest: Guest, start_worker: Callable[..., ThreadedWorker], admin: RendioAdmin,
    sql: SqlRunner, stack: RunningStack,
) -> None:
    # The first status poll finishes it and sends the webhook: both finishers run.
    jobs = [guest.generate(f"Photo finish {n} [fake:succeed-after=1]") for n in range(3)]
    start_worker(poll_interval=0.05)
    for job_id in jobs:
        job = wait_for_job(admin, job_id)
        assert job.status is JobStatus.COMPLETED
        assert stored_objects(sql, guest.user_id, job_id) == media_of(guest.user_id, job_id)
        assert ledger_of(sql, job_id) == charged_once()
        assert all(d["status"] == 200 for d in _deliveries(stack, job.provider_job_id, 1))
