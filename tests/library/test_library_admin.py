"""RendioAdmin (service role) through the real local stack."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from rendio_backend import (
    BucketSpec,
    ChangeAction,
    CreditReason,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidRequest,
    JobStatus,
    ModelUnavailable,
    NotFound,
    RendioAdmin,
    RendioClient,
    RendioConfig,
    RendioConnectionError,
    TransactionAlreadyUsed,
    request_hash,
)
from rendio_backend._core.catalog import default_catalog_path
from tests.support.stack import RunningStack, SqlRunner

VEO = uuid.UUID("8b87c271-f01c-550b-9e12-36cf851aae46")
VEO_FAST = uuid.UUID("ca57e12e-93af-5489-bd20-93d510bf15e9")
SORA = uuid.UUID("e2afac70-e651-52d3-9e78-c8a39ba0a55f")


@pytest.fixture(scope="module")
def config(stack: RunningStack) -> RendioConfig:
    return stack.rendio_config()


@pytest.fixture(scope="module")
def admin(config: RendioConfig) -> Iterator[RendioAdmin]:
    with RendioAdmin(config) as admin:
        admin.provision_storage()
        admin.seed_models()
        yield admin


def _user(config: RendioConfig) -> uuid.UUID:
    with RendioClient(config) as client:
        return client.sign_in_anonymously().user_id


def _funded_user(config: RendioConfig, admin: RendioAdmin, credits: int = 10) -> uuid.UUID:
    user_id = _user(config)
    admin.add_credits(user_id, credits)
    return user_id


def test_provisioning_twice_changes_nothing_the_second_time(admin: RendioAdmin) -> None:
    # Drift one bucket, and add one that does not exist yet.
    name = f"rendio_test_{uuid.uuid4().hex[:8]}"
    extra = BucketSpec(id=name, file_size_limit=1024, allowed_mime_types=("text/plain",))
    drift = BucketSpec(id="thumbnails", file_size_limit=1024, allowed_mime_types=("image/png",))
    admin.provision_storage([drift])

    first = admin.provision_storage([*_default_buckets(), extra])
    actions = {item.bucket: item.action for item in first.items}
    assert actions["thumbnails"] is ChangeAction.UPDATED
    assert actions[name] is ChangeAction.CREATED
    assert actions["videos"] is ChangeAction.UNCHANGED
    thumbnails = next(item for item in first.items if item.bucket == "thumbnails")
    assert thumbnails.changes["file_size_limit"] == [1024, 5 * 1024 * 1024]
    assert first.changed

    second = admin.provision_storage([*_default_buckets(), extra])
    assert not second.changed
    assert second.summary() == "created 0, updated 0, unchanged 4"


def _default_buckets() -> list[BucketSpec]:
    from rendio_backend import BUCKETS

    return list(BUCKETS)


def test_seeding_twice_changes_nothing_the_second_time(admin: RendioAdmin,
                                                       tmp_path: Path) -> None:
    catalog = json.loads(default_catalog_path().read_text())
    for model in catalog["models"]:  # fresh ids, so this test owns its rows
        model["id"] = str(uuid.uuid4())
    path = tmp_path / "models.json"
    path.write_text(json.dumps(catalog))

    first = admin.seed_models(path)
    assert first.catalog_version == catalog["version"]
    assert [item.action for item in first.items] == [ChangeAction.CREATED] * 5
    second = admin.seed_models(path)
    assert not second.changed and second.count(ChangeAction.UNCHANGED) == 5

    catalog["models"][0]["cost_per_generation"] = 7
    catalog["version"] = "test.2"
    path.write_text(json.dumps(catalog))
    third = admin.seed_models(path)
    assert third.items[0].action is ChangeAction.UPDATED
    assert third.items[0].changed_fields == ["cost_per_generation"]
    assert third.summary() == "created 0, updated 1, unchanged 4"

    # The shipped catalog: Veo 3.1 rows available, Sora 2 rows shipped unavailable.
    assert not admin.seed_models().changed
    models = {model.id: model for model in admin.list_models()}
    assert models[VEO].provider_model_id == "fal-ai/veo3.1" and models[VEO].is_available
    assert not models[SORA].is_available


def test_seed_rejects_an_invalid_catalog(admin: RendioAdmin, tmp_path: Path) -> None:
    from rendio_backend import ConfigurationError

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": "x", "models": [{"name": "no id"}]}))
    with pytest.raises(ConfigurationError):
        admin.seed_models(path)
    with pytest.raises(ConfigurationError):
        admin.seed_models(tmp_path / "missing.json")


def test_user_lookups(config: RendioConfig, admin: RendioAdmin) -> None:
    user_id = _user(config)
    device = f"device-{uuid.uuid4()}"
    assert admin.grant_initial_credits(user_id, device) is True
    assert admin.grant_initial_credits(user_id, device) is False  # once per user/device
    user = admin.get_user(user_id)
    assert user.device_id == device and user.credits_remaining == 10
    assert admin.get_user_by_device_id(device).id == user_id
    with pytest.raises(NotFound):
        admin.get_user(uuid.uuid4())
    with pytest.raises(NotFound):
        admin.get_user_by_device_id("no-such-device")
    with pytest.raises(NotFound):
        admin.get_user_by_apple_sub("no-such-sub")
    # A reinstall (new guest, same device) gets no second grant.
    assert admin.grant_initial_credits(_user(config), device) is False


def test_credits_add_deduct_iap_and_history(config: RendioConfig, admin: RendioAdmin) -> None:
    user_id = _user(config)
    grant = admin.add_credits(user_id, 20, reason=CreditReason.IAP_PURCHASE,
                              transaction_id=f"tx-{user_id}")
    assert not grant.already_processed and grant.credits_remaining == 20
    replay = admin.add_credits(user_id, 20, reason="iap_purchase", transaction_id=f"tx-{user_id}")
    assert replay.already_processed and replay.credits_remaining == 20
    with pytest.raises(TransactionAlreadyUsed):
        admin.add_credits(_user(config), 20, reason="iap_purchase",
                          transaction_id=f"tx-{user_id}")
    deduction = admin.deduct_credits(user_id, 15)
    assert deduction.credits_remaining == 5
    with pytest.raises(InsufficientCredits) as caught:
        admin.deduct_credits(user_id, 6)
    assert (caught.value.required, caught.value.available) == (6, 5)
    assert caught.value.http_status == 402
    refund = admin.apply_iap_refund(user_id, f"tx-{user_id}")
    assert (refund.credits_removed, refund.shortfall, refund.credits_remaining) == (5, 15, 0)
    assert admin.apply_iap_refund(user_id, f"tx-{user_id}").already_processed
    with pytest.raises(NotFound):
        admin.apply_iap_refund(user_id, "no-such-transaction")
    with pytest.raises(InvalidRequest):
        admin.add_credits(user_id, 0)
    with pytest.raises(InvalidRequest):
        admin.add_credits(user_id, 5, reason="video_generation")
    with pytest.raises(InvalidRequest):
        admin.add_credits(user_id, 5, reason="free money")

    page = admin.credit_history(user_id, limit=2)
    assert [row.reason for row in page.items] == [CreditReason.IAP_REFUND,
                                                  CreditReason.ADMIN_ADJUSTMENT]
    rest = admin.credit_history(user_id, limit=2, cursor=page.next_cursor)
    assert [row.reason for row in rest.items] == [CreditReason.IAP_PURCHASE]
    assert rest.next_cursor is None


def test_job_lifecycle_claim_process_complete(config: RendioConfig, admin: RendioAdmin) -> None:
    user_id = _funded_user(config, admin)
    created = admin.create_job(user_id, VEO_FAST, "a dog surfing", {"duration": "4s"})
    assert created.status is JobStatus.PENDING and created.credits_used == 2
    worker = f"worker-{uuid.uuid4().hex[:6]}"
    claimed = []
    for _ in range(50):  # other tests' pending jobs may come first
        batch = admin.claim_jobs(worker, limit=50, lease=timedelta(minutes=5))
        claimed.extend(batch)
        if any(job.job_id == created.job_id for job in claimed) or not batch:
            break
    job = next(job for job in claimed if job.job_id == created.job_id)
    assert job.lease_owner == worker and job.attempts == 1
    assert not admin.mark_processing(created.job_id, worker="someone-else", provider="fal",
                                     provider_job_id="req-1")
    assert admin.mark_processing(created.job_id, worker=worker, provider="fal",
                                 provider_job_id="req-1", status_url="https://x/status",
                                 response_url="https://x/response", cancel_url="https://x/c")
    processing = admin.get_job(created.job_id)
    assert processing.status is JobStatus.PROCESSING
    assert processing.provider_status_url == "https://x/status"
    polled = admin.claim_processing_jobs(f"poller-{worker}", limit=1000, lease=60)
    assert created.job_id in {job.job_id for job in polled}
    assert admin.complete_job(created.job_id, video_path=f"{user_id}/{created.job_id}.mp4")
    assert not admin.complete_job(created.job_id, video_path="again.mp4")  # final
    assert admin.fail_job(created.job_id, "too late").failed is False
    with pytest.raises(NotFound):
        admin.complete_job(uuid.uuid4(), video_path="x.mp4")
    with pytest.raises(InvalidRequest):
        admin.complete_job(created.job_id, video_path="")


def test_fail_refunds_exactly_once(config: RendioConfig, admin: RendioAdmin) -> None:
    user_id = _funded_user(config, admin)
    created = admin.create_job(user_id, VEO, "a storm")
    assert created.credits_remaining == 6
    failure = admin.fail_job(created.job_id, "provider said no")
    assert failure.failed and failure.credits_refunded == 4 and failure.credits_remaining == 10
    again = admin.fail_job(created.job_id, "provider said no")
    assert not again.failed and again.credits_refunded == 0 and again.status is JobStatus.FAILED
    assert admin.get_job(created.job_id).error_message == "provider said no"
    with pytest.raises(NotFound):
        admin.fail_job(uuid.uuid4(), "nope")


def test_create_job_idempotency_and_errors(config: RendioConfig, admin: RendioAdmin,
                                           sql: SqlRunner,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    user_id = _funded_user(config, admin, credits=5)
    key = uuid.uuid4()
    first = admin.create_job(user_id, VEO, "a boat", idempotency_key=key)
    replay = admin.create_job(user_id, VEO, "a boat", idempotency_key=str(key))
    assert replay.replayed and replay.job_id == first.job_id
    assert admin.get_user(user_id).credits_remaining == 1  # charged once
    with pytest.raises(IdempotencyKeyReused):
        admin.create_job(user_id, VEO, "another boat", idempotency_key=key)
    with pytest.raises(InsufficientCredits) as caught:
        admin.create_job(user_id, VEO, "a plane")
    assert caught.value.details["required"] == 4 and caught.value.available == 1
    with pytest.raises(ModelUnavailable):
        admin.create_job(user_id, SORA, "a plane")
    with pytest.raises(NotFound):
        admin.create_job(user_id, uuid.uuid4(), "a plane")
    with pytest.raises(InvalidRequest):
        admin.create_job(user_id, VEO, "")
    with pytest.raises(InvalidRequest):
        admin.create_job(user_id, "not-a-uuid", "a plane")
    # A key whose first request is still running (left in_progress) is a conflict.
    busy = uuid.uuid4()
    fingerprint = request_hash("POST", "/functions/v1/generate-video",
                               {"model_id": str(VEO_FAST), "prompt": "a train", "settings": {}})
    sql("insert into public.idempotency_log (user_id, idempotency_key, request_hash, "
        "operation_type) values (%s, %s, %s, 'video_generation')", user_id, busy, fingerprint)
    delays: list[float] = []
    monkeypatch.setattr(admin, "_jitter", _recorder(delays))
    with pytest.raises(IdempotencyKeyInUse) as conflict:
        admin.create_job(user_id, VEO_FAST, "a train", idempotency_key=busy)
    assert conflict.value.http_status == 409
    assert delays == [0.5, 1.0]  # retried twice (capped backoff), then gave up
    assert conflict.value.details["idempotency_key"] == str(busy)


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def test_stray_files_go_and_what_jobs_hold_stays(config: RendioConfig, admin: RendioAdmin,
                                                 sql: SqlRunner) -> None:
    user_id = _funded_user(config, admin, credits=20)
    stored: dict[uuid.UUID, list[str]] = {}

    def job_with_files(prompt: str) -> uuid.UUID:
        job = admin.create_job(user_id, VEO_FAST, prompt).job_id
        stored[job] = [f"videos/{admin.upload_video(user_id, job, MP4).path}",
                       f"thumbnails/{admin.upload_thumbnail(user_id, job, JPEG).path}"]
        return job

    failed, bare, whole = (job_with_files(f"strays {n}") for n in range(3))
    # Failed while its files were stored (a finisher killed before its cleanup).
    admin.fail_job(failed, "deadline_exceeded")
    # Completed without the thumbnail another finisher stored.
    admin.complete_job(bare, video_path=stored[bare][0])
    # Completed with both (one path with its bucket's prefix, one without).
    admin.complete_job(whole, video_path=stored[whole][0],
                       thumbnail_path=stored[whole][1].removeprefix("thumbnails/"))
    # Three jobs in flight at most: these come once the first three finished.
    running, long_ago = job_with_files("still running"), job_with_files("long ago")
    admin.fail_job(long_ago, "deadline_exceeded")
    # Recorded with a leading slash, which Storage ignores: still the job's own files.
    slashed = job_with_files("slashed")
    admin.complete_job(slashed, video_path="/" + stored[slashed][0],
                       thumbnail_path="//" + stored[slashed][1].removeprefix("thumbnails/"))
    sql("update public.video_jobs set completed_at = now() - interval '3 hours' "
        "where job_id = %s", long_ago)

    report = admin.remove_stray_files()  # the workers' window: the last hour
    ours = {name for name in report.files_removed if str(user_id) in name}
    assert ours == {*stored[failed], stored[bare][1]}

    def left() -> set[str]:
        rows = sql("select bucket_id || '/' || name from storage.objects "
                   "where bucket_id in ('videos', 'thumbnails') and name like %s",
                   f"{user_id}/%")
        return {str(row[0]) for row in rows}

    assert left() == {stored[bare][0], *stored[whole], *stored[running], *stored[long_ago],
                      *stored[slashed]}
    assert not {n for n in admin.remove_stray_files().files_removed if str(user_id) in n}
    # Further back, the long-ago failure's files are found too; the rest stays.
    wider = admin.remove_stray_files(timedelta(hours=4))
    assert {n for n in wider.files_removed if str(user_id) in n} == set(stored[long_ago])
    assert left() == {stored[bare][0], *stored[whole], *stored[running], *stored[slashed]}
    with pytest.raises(InvalidRequest):
        admin.remove_stray_files(0)


def test_maintenance_and_ledger(config: RendioConfig, admin: RendioAdmin,
                                sql: SqlRunner) -> None:
    user_id = _funded_user(config, admin)
    stuck = admin.create_job(user_id, VEO_FAST, "stuck")
    old = admin.create_job(user_id, VEO_FAST, "old and done")
    admin.fail_job(old.job_id, "failed long ago")
    sql("update public.video_jobs set created_at = now() - interval '100 days' "
        "where job_id = %s", old.job_id)
    sql("update public.video_jobs set deadline_at = now() - interval '1 minute' "
        "where job_id = %s", stuck.job_id)
    sql("insert into public.idempotency_log (user_id, idempotency_key, request_hash, "
        "operation_type, expires_at) values (%s, %s, 'h', 'video_generation', "
        "now() - interval '1 hour')", user_id, uuid.uuid4())

    assert admin.fail_stuck_jobs(timedelta(hours=2)) >= 1
    assert admin.get_job(stuck.job_id).status is JobStatus.FAILED
    assert admin.purge_expired_idempotency_keys() >= 1
    assert admin.archive_old_jobs(timedelta(days=90)).jobs_archived >= 1
    with pytest.raises(NotFound):
        admin.get_job(old.job_id)
    with pytest.raises(InvalidRequest):
        admin.archive_old_jobs(-1)
    assert admin.verify_ledger() == []

    # A broken ledger is reported, not hidden.
    sql("alter table public.users disable trigger users_set_updated_at")
    try:
        sql("update public.users set credits_remaining = credits_remaining + 1 "
            "where id = %s", user_id)
        violations = admin.verify_ledger()
        assert {v.invariant for v in violations if v.user_id == user_id} == {
            "balance_equals_ledger_sum"}
    finally:
        sql("update public.users set credits_remaining = credits_remaining - 1 "
            "where id = %s", user_id)
        sql("alter table public.users enable trigger users_set_updated_at")
    assert admin.verify_ledger() == []


class _LoseCreateAnswers(httpx.BaseTransport):
    """Forwards to the real stack; create_video_job calls fail as `fail` decides.

    `fail(attempt)` returns "lose" (the request reaches the database, then the answer
    is lost in a read timeout), "refuse" (a connection error before anything is sent)
    or None (pass through).
    """

    def __init__(self, fail: Callable[[int], str | None]) -> None:
        self.inner = httpx.HTTPTransport()
        self.fail = fail
        self.bodies: list[dict[str, object]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/rpc/create_video_job"):
            return self.inner.handle_request(request)
        self.bodies.append(json.loads(request.read()))
        action = self.fail(len(self.bodies))
        if action == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        response = self.inner.handle_request(request)
        if action == "lose":
            response.read()
            response.close()
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def _recorder(delays: list[float]) -> Callable[[float], float]:
    """A stand-in for `_jitter` that records the backoff and does not wait."""
    def jitter(seconds: float) -> float:
        delays.append(seconds)
        return 0.0
    return jitter


def _job_count(sql: SqlRunner, user_id: uuid.UUID) -> int:
    return int(sql("select count(*) from public.video_jobs where user_id = %s", user_id)[0][0])


def test_create_job_without_a_key_retries_a_lost_answer_and_charges_once(
        config: RendioConfig, admin: RendioAdmin, sql: SqlRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    user_id = _funded_user(config, admin, credits=10)
    transport = _LoseCreateAnswers(lambda attempt: "lose" if attempt == 1 else None)
    with httpx.Client(transport=transport, timeout=10) as http, \
            RendioAdmin(config, http_client=http) as flaky:
        monkeypatch.setattr(flaky, "_jitter", lambda seconds: 0.0)
        created = flaky.create_job(user_id, VEO, "a lighthouse", {"duration": "8s"})
    keys = [body["p_idempotency_key"] for body in transport.bodies]
    assert len(keys) == 2 and keys[0] == keys[1] == str(created.idempotency_key)
    assert transport.bodies[0] == transport.bodies[1]  # the same request, resent
    assert created.replayed  # the first attempt had created it
    assert admin.get_user(user_id).credits_remaining == 10 - 4  # charged once
    assert _job_count(sql, user_id) == 1
    assert admin.get_job(created.job_id).prompt == "a lighthouse"


def test_create_job_that_keeps_failing_reports_its_key(
        config: RendioConfig, admin: RendioAdmin, sql: SqlRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    user_id = _funded_user(config, admin, credits=10)
    transport = _LoseCreateAnswers(lambda attempt: "lose" if attempt == 1 else "refuse")
    delays: list[float] = []
    with httpx.Client(transport=transport, timeout=10) as http, \
            RendioAdmin(config, http_client=http) as flaky:
        monkeypatch.setattr(flaky, "_jitter", _recorder(delays))
        with pytest.raises(RendioConnectionError) as caught:
            flaky.create_job(user_id, VEO, "a windmill")
    assert len(transport.bodies) == 3 and delays == [0.5, 1.0]
    key = caught.value.details["idempotency_key"]
    assert {body["p_idempotency_key"] for body in transport.bodies} == {key}
    # The first attempt went through; retrying later with the reported key replays it.
    retried = admin.create_job(user_id, VEO, "a windmill", idempotency_key=key)
    assert retried.replayed and str(retried.idempotency_key) == key
    assert admin.get_user(user_id).credits_remaining == 6 and _job_count(sql, user_id) == 1


def test_create_job_rejects_what_is_not_json(config: RendioConfig, admin: RendioAdmin,
                                             sql: SqlRunner) -> None:
    user_id = _funded_user(config, admin, credits=10)
    for prompt, settings in (("a \ud800 cat", None), ("a cat", {"fps": math.nan}),
                             ("a cat", {"when": uuid.uuid4()}), ("a cat", {"x": math.inf})):
        with pytest.raises(InvalidRequest) as caught:
            admin.create_job(user_id, VEO, prompt, settings)
        assert caught.value.details["field"] in ("prompt", "settings")
    with pytest.raises(InvalidRequest):  # a lone surrogate in any other call, too
        admin.get_user_by_device_id("device-\udfff")
    with pytest.raises(InvalidRequest):
        admin.grant_initial_credits(user_id, "device-\udfff")
    assert _job_count(sql, user_id) == 0
    assert admin.get_user(user_id).credits_remaining == 10


def test_storage_paths_with_dot_segments_are_refused(admin: RendioAdmin) -> None:
    for path in ("../secrets.mp4", "a/%2e%2e/b.mp4", "a/%ff.mp4"):
        with pytest.raises(InvalidRequest):
            admin.signed_url("videos", path)


def test_closed_admin_refuses_calls(config: RendioConfig) -> None:
    from rendio_backend import ConfigurationError

    closed = RendioAdmin(config)
    closed.close()
    for call in (closed.verify_ledger, closed.provision_storage, closed.list_models,
                 lambda: closed.create_job(uuid.uuid4(), VEO, "x")):
        with pytest.raises(ConfigurationError) as caught:
            call()
        assert caught.value.code == "client_closed"
