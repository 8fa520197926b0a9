"""The credit, generation, job and maintenance functions, called as the service role."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError

from rendio_backend.models import CLIENT_JOB_COLUMNS
from tests.support.ledger_model import balance, ledger_violations, new_model, new_user, rest
from tests.support.stack import RunningStack, SqlRunner


class SqlError(Exception):
    """A function's custom error: SQLSTATE, message and JSON detail."""


@contextmanager
def raises(sqlstate: str, message: str) -> Iterator[pytest.ExceptionInfo[psycopg.Error]]:
    """Expect a psycopg error with this SQLSTATE and (first line of) message."""
    with pytest.raises(psycopg.Error, match=f"^{message}") as info:
        yield info
    assert info.value.sqlstate == sqlstate


def detail(info: pytest.ExceptionInfo[psycopg.Error]) -> dict[str, Any]:
    assert info.value.diag.message_detail is not None
    return dict(json.loads(info.value.diag.message_detail))


def create_job(call: Any, user: str, model: str, *, key: str | None = None,
               prompt: str = "a cat on a skateboard", request_hash: str = "h1") -> Any:
    return call("create_video_job", user, model, prompt, json.dumps({"duration": "8s"}),
                key or str(uuid.uuid4()), request_hash)


# --- grant_initial_credits ----------------------------------------------------------


def test_initial_grant_once_per_user_and_device(call: Any, sql: SqlRunner) -> None:
    device = f"device-{uuid.uuid4()}"
    first, second = new_user(sql), new_user(sql)
    assert call("grant_initial_credits", first, device) is True
    assert call("grant_initial_credits", first, device) is False
    assert call("grant_initial_credits", first, f"device-{uuid.uuid4()}") is False
    assert call("grant_initial_credits", second, device) is False  # reinstall on same device
    assert balance(sql, first) == (10, 10) and balance(sql, second) == (0, 0)
    # The device is bound to its newest user.
    rows: dict[str, str | None] = dict(sql(
        "select id::text, device_id from public.users where id = any(%s::uuid[])",
        [first, second]))
    assert rows[second] == device and rows[first] != device
    assert ledger_violations(sql, [first, second]) == []


def test_device_claim_survives_user_deletion(call: Any, sql: SqlRunner) -> None:
    device = f"device-{uuid.uuid4()}"
    first = new_user(sql)
    assert call("grant_initial_credits", first, device) is True
    sql("delete from auth.users where id = %s", first)
    assert call("grant_initial_credits", new_user(sql), device) is False


def test_initial_grant_rejects_bad_input(call: Any, sql: SqlRunner) -> None:
    with raises("PT400", "invalid_request"):
        call("grant_initial_credits", new_user(sql), "")
    with raises("PT404", "not_found"):
        call("grant_initial_credits", str(uuid.uuid4()), "some-device")


# --- add / deduct -------------------------------------------------------------------


def test_add_credits_is_idempotent_per_transaction(call: Any, sql: SqlRunner) -> None:
    user, other = new_user(sql), new_user(sql)
    tx = f"2000000{uuid.uuid4().int % 10**9}"
    first = call("add_credits", user, 50, "iap_purchase", tx)
    replay = call("add_credits", user, 50, "iap_purchase", tx)
    assert first["already_processed"] is False and first["credits_remaining"] == 50
    assert replay["already_processed"] is True and replay["credits_remaining"] == 50
    assert replay["entry_id"] == first["entry_id"]
    with raises("PT409", "transaction_already_used"):
        call("add_credits", other, 50, "iap_purchase", tx)
    assert balance(sql, user) == (50, 50) and balance(sql, other) == (0, 0)


@pytest.mark.parametrize(("amount", "reason", "tx"), [
    (0, "admin_adjustment", None), (-5, "admin_adjustment", None),
    (5, "initial_grant", None), (5, "generation_failed_refund", None),
    (5, "iap_purchase", None), (5, "bonus", None),
])
def test_add_credits_validates(call: Any, sql: SqlRunner, amount: int, reason: str,
                               tx: str | None) -> None:
    with raises("PT400", "invalid_request"):
        call("add_credits", new_user(sql), amount, reason, tx)


def test_a_job_is_charged_once_and_only_its_users(call: Any, sql: SqlRunner) -> None:
    user, other = new_user(sql), new_user(sql)
    for who in (user, other):
        call("add_credits", who, 10, "admin_adjustment", None)
    created = call("create_video_job", user, new_model(sql, cost=2), "a lake", "{}",
                   str(uuid.uuid4()), "h")
    job = created["response"]["job_id"]  # charged by create_video_job
    with raises("PT409", "job_already_charged") as info:
        call("deduct_credits", user, 2, "video_generation", job)
    assert detail(info) == {"job_id": job}
    with raises("PT404", "not_found") as info:
        call("deduct_credits", other, 2, "video_generation", job)
    assert detail(info) == {"resource": "job", "id": job}
    # A refusal is checked before the balance: nothing is said about other's credits.
    with raises("PT404", "not_found"):
        call("deduct_credits", other, 1000, "video_generation", str(uuid.uuid4()))
    assert [balance(sql, who)[0] for who in (user, other)] == [8, 10]
    assert ledger_violations(sql, [user, other]) == []


def test_deduct_never_below_zero(call: Any, sql: SqlRunner) -> None:
    user = new_user(sql)
    call("add_credits", user, 5, "admin_adjustment", None)
    with raises("PT402", "insufficient_credits") as info:
        call("deduct_credits", user, 6, "admin_adjustment", None)
    assert detail(info) == {"required": 6, "available": 5}
    assert call("deduct_credits", user, 5, "admin_adjustment", None)["credits_remaining"] == 0
    # credits_total is lifetime earnings: deductions never lower it.
    assert balance(sql, user) == (0, 5)
    assert ledger_violations(sql, [user]) == []


# --- create_video_job ---------------------------------------------------------------


def test_create_video_job_charges_and_stores_the_response(call: Any, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=4)
    call("add_credits", user, 10, "admin_adjustment", None)
    key = str(uuid.uuid4())
    result = create_job(call, user, model, key=key)
    assert result["status_code"] == 202 and result["replayed"] is False
    body = result["response"]
    assert set(body) == {"job_id", "status", "credits_used", "credits_remaining"}
    assert (body["status"], body["credits_used"], body["credits_remaining"]) == ("pending", 4, 6)
    job = sql("select user_id::text, model_id::text, status, credits_used, settings, provider "
              "from public.video_jobs where job_id = %s", body["job_id"])
    assert job == [(user, model, "pending", 4, {"duration": "8s"}, "fal")]
    entry = sql("select change, reason, balance_after, job_id::text from public.quota_log "
                "where user_id = %s order by version desc limit 1", user)
    assert entry == [(-4, "video_generation", 6, body["job_id"])]
    stored = sql("select state, status_code, response_data, request_hash, job_id::text "
                 "from public.idempotency_log where user_id = %s and idempotency_key = %s",
                 user, key)
    assert stored == [("completed", 202, body, "h1", body["job_id"])]

    replay = create_job(call, user, model, key=key)
    assert replay == {"status_code": 202, "replayed": True, "response": body}
    assert balance(sql, user)[0] == 6
    with raises("PT422", "idempotency_key_reused"):
        create_job(call, user, model, key=key, request_hash="h2")
    assert ledger_violations(sql, [user]) == []


def test_idempotency_keys_are_per_user(call: Any, sql: SqlRunner) -> None:
    alice, bob, model = new_user(sql), new_user(sql), new_model(sql, cost=4)
    for user in (alice, bob):
        call("add_credits", user, 4, "admin_adjustment", None)
    key = str(uuid.uuid4())
    a = create_job(call, alice, model, key=key)
    b = create_job(call, bob, model, key=key, request_hash="other")
    assert a["replayed"] is False and b["replayed"] is False
    assert a["response"]["job_id"] != b["response"]["job_id"]


def test_failed_request_stores_nothing_and_can_be_retried(call: Any, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=4)
    key = str(uuid.uuid4())
    with raises("PT402", "insufficient_credits") as info:
        create_job(call, user, model, key=key)
    assert detail(info) == {"required": 4, "available": 0}
    assert sql("select count(*) from public.idempotency_log where user_id = %s", user) == [(0,)]
    call("add_credits", user, 4, "admin_adjustment", None)
    assert create_job(call, user, model, key=key)["replayed"] is False
    assert balance(sql, user)[0] == 0


def test_model_checks(call: Any, sql: SqlRunner) -> None:
    user = new_user(sql)
    call("add_credits", user, 10, "admin_adjustment", None)
    with raises("PT404", "not_found") as info:
        create_job(call, user, str(uuid.uuid4()))
    assert detail(info)["resource"] == "model"
    with raises("PT422", "model_unavailable"):
        create_job(call, user, new_model(sql, available=False))
    assert balance(sql, user)[0] == 10


@pytest.mark.parametrize(("prompt", "ok"), [("", False), ("x", True), ("x" * 2000, True),
                                            ("x" * 2001, False)])
def test_prompt_length(call: Any, sql: SqlRunner, prompt: str, ok: bool) -> None:
    user, model = new_user(sql), new_model(sql, cost=1)
    call("add_credits", user, 1, "admin_adjustment", None)
    if ok:
        assert create_job(call, user, model, prompt=prompt)["replayed"] is False
    else:
        with raises("PT400", "invalid_request"):
            create_job(call, user, model, prompt=prompt)


def test_same_key_while_first_request_runs_is_in_use(stack: RunningStack, call: Any,
                                                    sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=1)
    call("add_credits", user, 5, "admin_adjustment", None)
    key = str(uuid.uuid4())
    with psycopg.connect(stack.config.superuser_db_url) as first:  # holds its transaction open
        first.execute("set role service_role")
        first.execute("select public.create_video_job(%s, %s, 'x', '{}', %s, 'h')",
                      (user, model, key))
        with raises("PT409", "idempotency_key_in_use"):
            create_job(call, user, model, key=key, request_hash="h")
        first.commit()
    assert create_job(call, user, model, key=key, request_hash="h")["replayed"] is True
    assert balance(sql, user)[0] == 4


# --- job lifecycle ------------------------------------------------------------------


def _job(call: Any, sql: SqlRunner, cost: int = 4) -> tuple[str, str]:
    user, model = new_user(sql), new_model(sql, cost=cost)
    call("add_credits", user, 10, "admin_adjustment", None)
    return user, create_job(call, user, model)["response"]["job_id"]


def test_worker_lifecycle_to_completion(call: Any, sql: SqlRunner) -> None:
    user, job = _job(call, sql)
    assert call("mark_job_processing", job, "w1", "fal", "req", None, None, None) is False
    claimed = sql("select job_id::text from public.claim_pending_jobs('w1', 1000)")
    assert (job,) in claimed
    assert call("mark_job_processing", job, "w2", "fal", "req-1", None, None, None) is False
    assert call("mark_job_processing", job, "w1", "fal", "req-1", "https://s", "https://r",
                "https://c") is True
    row = sql("select status, provider_job_id, provider_status_url, provider_response_url, "
              "provider_cancel_url, attempts, lease_owner from public.video_jobs "
              "where job_id = %s", job)
    assert row == [("processing", "req-1", "https://s", "https://r", "https://c", 1, None)]
    path = f"{user}/{job}.mp4"
    assert call("complete_video_job", job, path, f"{user}/{job}.jpg") is True
    assert call("complete_video_job", job, path, None) is False
    failed = call("fail_video_job", job, "late error")
    assert failed["failed"] is False and failed["status"] == "completed"
    assert balance(sql, user)[0] == 6  # no refund after completion
    assert ledger_violations(sql, [user]) == []


def test_fail_refunds_exactly_once(call: Any, sql: SqlRunner) -> None:
    user, job = _job(call, sql)
    first = call("fail_video_job", job, "provider said ERROR")
    again = call("fail_video_job", job, "again")
    assert first == {"failed": True, "status": "failed", "credits_refunded": 4,
                     "credits_remaining": 10}
    assert again["failed"] is False and again["credits_refunded"] == 0
    assert call("complete_video_job", job, "p.mp4", None) is False
    assert sql("select status, error_message from public.video_jobs where job_id = %s",
               job) == [("failed", "provider said ERROR")]
    assert balance(sql, user) == (10, 10)
    with raises("PT404", "not_found"):
        call("fail_video_job", str(uuid.uuid4()), "x")
    assert ledger_violations(sql, [user]) == []


def test_claims_skip_locked_jobs(stack: RunningStack, call: Any, sql: SqlRunner) -> None:
    _, job = _job(call, sql)
    with psycopg.connect(stack.config.superuser_db_url) as locker:
        locker.execute("select 1 from public.video_jobs where job_id = %s for update", (job,))
        claimed = sql("select job_id::text from public.claim_pending_jobs('w-skip', 1000)")
        assert (job,) not in claimed
        locker.rollback()


def test_sweeper_fails_and_refunds_stuck_jobs(call: Any, sql: SqlRunner) -> None:
    user, late = _job(call, sql, cost=2)
    _, fresh = _job(call, sql, cost=2)
    sql("update public.video_jobs set deadline_at = now() - interval '1 second' "
        "where job_id = %s", late)
    assert call("fail_stuck_jobs", "2 hours") >= 1
    rows: dict[str, str] = dict(sql("select job_id::text, status from public.video_jobs "
                    "where job_id = any(%s::uuid[])", [late, fresh]))
    assert rows == {late: "failed", fresh: "pending"}
    assert balance(sql, user)[0] == 10


@pytest.mark.parametrize("older_than", ["0 seconds", "-1 hour"])
def test_sweeper_refuses_a_threshold_that_would_fail_healthy_jobs(
    call: Any, sql: SqlRunner, older_than: str
) -> None:
    _, job = _job(call, sql)
    with pytest.raises(psycopg.Error) as refused:
        call("fail_stuck_jobs", older_than)
    assert refused.value.sqlstate == "PT400"
    assert sql("select status from public.video_jobs where job_id = %s", job) == [("pending",)]


def test_sweeper_gives_up_after_max_attempts(call: Any, sql: SqlRunner) -> None:
    user, job = _job(call, sql)
    sql("update public.video_jobs set attempts = 5, lease_owner = 'dead', "
        "lease_expires_at = now() - interval '1 minute' where job_id = %s", job)
    assert (job,) not in sql("select job_id::text from public.claim_pending_jobs('w', 1000)")
    call("fail_stuck_jobs", "2 hours")
    assert sql("select status, error_message from public.video_jobs where job_id = %s",
               job) == [("failed", "too_many_attempts")]
    assert balance(sql, user)[0] == 10


def test_expired_lease_is_claimed_again(call: Any, sql: SqlRunner) -> None:
    _, job = _job(call, sql)
    assert (job,) in sql("select job_id::text from public.claim_pending_jobs('w1', 1000)")
    assert (job,) not in sql("select job_id::text from public.claim_pending_jobs('w2', 1000)")
    sql("update public.video_jobs set lease_expires_at = now() - interval '1 second' "
        "where job_id = %s", job)
    assert (job,) in sql("select job_id::text from public.claim_pending_jobs('w2', 1000)")
    assert call("mark_job_processing", job, "w1", "fal", "r", None, None, None) is False
    assert call("mark_job_processing", job, "w2", "fal", "r", None, None, None) is True


def test_pollers_lease_processing_jobs(call: Any, sql: SqlRunner) -> None:
    _, job = _job(call, sql)
    sql("select public.claim_pending_jobs('w1', 1000)")
    call("mark_job_processing", job, "w1", "fal", "r", None, None, None)
    assert (job,) in sql("select job_id::text from public.claim_processing_jobs('p1', 1000)")
    assert (job,) not in sql("select job_id::text from public.claim_processing_jobs('p2', 1000)")


# --- maintenance --------------------------------------------------------------------


def test_purge_expired_keys(call: Any, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=1)
    call("add_credits", user, 2, "admin_adjustment", None)
    key = str(uuid.uuid4())
    first = create_job(call, user, model, key=key)["response"]["job_id"]
    sql("update public.idempotency_log set expires_at = now() - interval '1 second' "
        "where user_id = %s", user)
    # An expired key counts as unused, even before the purge.
    second = create_job(call, user, model, key=key)
    assert second["replayed"] is False and second["response"]["job_id"] != first
    sql("update public.idempotency_log set expires_at = now() - interval '1 second' "
        "where user_id = %s", user)
    assert call("purge_expired_idempotency_keys") >= 1
    assert sql("select count(*) from public.idempotency_log where user_id = %s", user) == [(0,)]


def test_archive_old_jobs(call: Any, sql: SqlRunner) -> None:
    user, done = _job(call, sql, cost=1)
    _, running = _job(call, sql, cost=1)
    call("complete_video_job", done, "v.mp4", None)
    sql("update public.video_jobs set created_at = now() - interval '91 days' "
        "where job_id = any(%s::uuid[])", [done, running])
    assert call("archive_old_jobs", "90 days") >= 1
    assert sql("select count(*) from public.video_jobs where job_id = %s", done) == [(0,)]
    archived = sql("select user_id::text, status, job ->> 'video_url' "
                   "from public.video_jobs_archive where job_id = %s", done)
    assert archived == [(user, "completed", "v.mp4")]
    assert sql("select status from public.video_jobs where job_id = %s", running) == [
        ("pending",)]
    assert ledger_violations(sql, [user]) == []


# --- IAP refunds --------------------------------------------------------------------


def test_iap_refund_with_shortfall(call: Any, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=4)
    tx = f"tx-{uuid.uuid4()}"
    call("add_credits", user, 10, "iap_purchase", tx)
    create_job(call, user, model)  # spends 4 of the purchased 10
    result = call("apply_iap_refund", user, tx)
    assert result == {"already_processed": False, "credits_removed": 6, "shortfall": 4,
                      "credits_remaining": 0}
    assert call("apply_iap_refund", user, tx)["already_processed"] is True
    assert balance(sql, user) == (0, 10)  # credits_total never decreases
    assert sql("select change, shortfall from public.quota_log where user_id = %s "
               "and reason = 'iap_refund'", user) == [(-6, 4)]
    with raises("PT404", "not_found"):
        call("apply_iap_refund", new_user(sql), tx)
    assert ledger_violations(sql, [user]) == []


def _notify_refund(conn: psycopg.Connection[Any], tx: str, kind: str = "REFUND",
                   signed_at: str | None = None) -> Any:
    row = conn.execute("select public.apply_app_store_notification(%s, %s, null, %s, %s)",
                       (uuid.uuid4(), kind, tx, signed_at)).fetchone()
    assert row is not None
    return row[0]


def test_a_purchase_refunded_before_it_is_redeemed_is_never_credited(
    stack: RunningStack, call: Any, sql: SqlRunner
) -> None:
    user, tx = new_user(sql), f"tx-{uuid.uuid4()}"
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:
        assert _notify_refund(conn, tx)["outcome"] == "no_purchase"
    with raises("PT422", "transaction_revoked") as info:
        call("add_credits", user, 10, "iap_purchase", tx)
    assert detail(info) == {"transaction_id": tx}
    assert balance(sql, user) == (0, 0)
    assert ledger_violations(sql, [user]) == []


def test_a_refund_apple_reversed_no_longer_refuses_the_purchase(
    stack: RunningStack, call: Any, sql: SqlRunner
) -> None:
    user, tx = new_user(sql), f"tx-{uuid.uuid4()}"
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:
        _notify_refund(conn, tx, "REFUND", "2026-11-01T10:00:00Z")
        # A reversal signed before the refund does not undo it ...
        _notify_refund(conn, tx, "REFUND_REVERSED", "2026-11-01T09:00:00Z")
        with raises("PT422", "transaction_revoked"):
            call("add_credits", user, 10, "iap_purchase", tx)
        # ... one signed after it does.
        _notify_refund(conn, tx, "REFUND_REVERSED", "2026-11-01T11:00:00Z")
    assert call("add_credits", user, 10, "iap_purchase", tx)["credits_remaining"] == 10
    assert ledger_violations(sql, [user]) == []


@pytest.mark.parametrize("first", ["redemption", "notification"])
def test_a_refund_and_its_redemption_at_once_never_both_miss(
    stack: RunningStack, sql: SqlRunner, first: str
) -> None:
    """Whichever commits first, the other sees it: refunded, or refused; never credited
    and kept. The first holds its transaction open while the second starts."""
    user, tx = new_user(sql), f"tx-{uuid.uuid4()}"
    url = stack.config.superuser_db_url
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as other:
        holder.execute("set role service_role")
        other.execute("set role service_role")
        other.execute("set lock_timeout = '10s'")

        def redeem(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute("select public.add_credits(%s, 10, 'iap_purchase', %s)",
                                (user, tx)).fetchone()

        started = threading.Event()
        answers: dict[str, Any] = {}

        def second() -> None:
            started.set()
            try:
                answers["second"] = (_notify_refund(other, tx) if first == "redemption"
                                     else redeem(other))
            except psycopg.Error as exc:
                answers["second"] = exc.sqlstate
        if first == "redemption":
            redeem(holder)
        else:
            _notify_refund(holder, tx)
        thread = threading.Thread(target=second)
        thread.start()
        started.wait()
        # The second side waits on the first's transaction lock until it commits.
        deadline = time.monotonic() + 10
        waiting = False
        with psycopg.connect(url, autocommit=True) as watcher:
            while not waiting and time.monotonic() < deadline:
                row = watcher.execute(
                    "select count(*) from pg_locks where locktype = 'advisory' "
                    "and not granted and pid = %s", (other.info.backend_pid,)).fetchone()
                waiting = bool(row and row[0])
                time.sleep(0.02)
        assert waiting, "the second side must wait for the first to commit"
        assert thread.is_alive()
        holder.commit()
        thread.join(timeout=10)
        assert not thread.is_alive()
    if first == "redemption":
        assert answers["second"]["outcome"] == "refunded"
    else:
        assert answers["second"] == "PT422"
    assert balance(sql, user)[0] == 0
    assert ledger_violations(sql, [user]) == []


# --- verify_ledger ------------------------------------------------------------------


def test_verify_ledger_detects_tampering(stack: RunningStack, call: Any, sql: SqlRunner) -> None:
    user, job = _job(call, sql)
    assert ledger_violations(sql, [user]) == []
    with psycopg.connect(stack.config.superuser_db_url) as conn:  # rolled back at the end
        conn.execute("update public.users set credits_remaining = 99, credits_total = 1 "
                     "where id = %s", (user,))
        conn.execute("update public.quota_log set balance_after = 7 "
                     "where user_id = %s and version = 2", (user,))
        conn.execute("update public.video_jobs set status = 'failed', completed_at = now() "
                     "where job_id = %s", (job,))
        rows = conn.execute("select invariant from public.verify_ledger() where user_id = %s",
                            (user,)).fetchall()
        conn.rollback()
    assert {r[0] for r in rows} == {
        "balance_equals_ledger_sum", "credits_total_equals_earnings", "balance_after_chain",
        "failed_job_refunded"}


# --- jobs in flight -----------------------------------------------------------------


def test_jobs_in_flight_are_limited_and_nothing_is_charged_over_it(
    call: Any, sql: SqlRunner
) -> None:
    user, model = new_user(sql, max_jobs_in_flight=3), new_model(sql, cost=1)
    call("add_credits", user, 10, "admin_adjustment")
    jobs = [create_job(call, user, model)["response"]["job_id"] for _ in range(3)]
    key = str(uuid.uuid4())
    with raises("PT429", "rate_limited") as info:
        create_job(call, user, model, key=key)
    assert detail(info) == {"limit": 3, "in_flight": 3, "retry_after": 30}
    assert balance(sql, user) == (7, 10)  # the fourth charged nothing
    # A finished job frees a slot, and the refused key was never used: it works now.
    call("fail_video_job", jobs[0], "provider error")
    retried = create_job(call, user, model, key=key)
    assert retried["replayed"] is False and balance(sql, user) == (7, 10)
    # A replay of a stored response is not a new job, whatever is in flight.
    assert create_job(call, user, model, key=key)["replayed"] is True
    assert ledger_violations(sql) == []


def test_clients_cannot_read_provider_columns(stack: RunningStack, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql)
    sql("select public.add_credits(%s, 10, 'admin_adjustment')", user)
    job = sql("select public.create_video_job(%s, %s, 'x', '{}', %s, 'h')",
              user, model, str(uuid.uuid4()))[0][0]["response"]["job_id"]
    sql("update public.video_jobs set provider_job_id = 'req-1', error_message = 'raw' "
        "where job_id = %s", job)
    client = rest(stack.config.api_url, stack.config.anon_key, stack.user_jwt(user))
    rows = client.table("video_jobs").select(CLIENT_JOB_COLUMNS).execute().data
    assert [row["job_id"] for row in rows] == [job]
    # The library's column list is exactly the grant: no readable column left out.
    granted = {str(name) for (name,) in sql(
        "select column_name from information_schema.column_privileges "
        "where table_schema = 'public' and table_name = 'video_jobs' "
        "and grantee = 'authenticated' and privilege_type = 'SELECT'")}
    assert set(CLIENT_JOB_COLUMNS.split(",")) == granted
    for columns in ("*", "provider_job_id", "error_message", "provider_status_url"):
        with pytest.raises(APIError) as info:
            client.table("video_jobs").select(columns).execute()
        assert info.value.code == "42501", columns
