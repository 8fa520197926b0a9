"""Races: many concurrent calls through PostgREST (service role), each thread its own client."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from postgrest.exceptions import APIError

from rendio_backend.local._proc import wait_until
from tests.support.ledger_model import balance, ledger_violations, new_model, new_user, rest
from tests.support.stack import RunningStack, SqlRunner

Outcome = tuple[str, Any]  # ("ok", data) or ("error", message)


def race(stack: RunningStack, calls: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
    """Run RPC calls at once (released together by a barrier); return each outcome."""
    stack.reload_schema("/rpc/verify_ledger")
    barrier = threading.Barrier(len(calls))
    cfg = stack.config

    def one(function: str, args: dict[str, Any]) -> Outcome:
        client = rest(cfg.api_url, cfg.service_role_key)
        barrier.wait()
        try:
            return "ok", client.rpc(function, args).execute().data
        except APIError as exc:
            return "error", exc.message

    workers = min(len(calls), 50)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if workers < len(calls):
            barrier = threading.Barrier(workers)  # released in waves of `workers`
        futures = [pool.submit(one, fn, args) for fn, args in calls]
        return [f.result(timeout=120) for f in futures]


def job_args(user: str, model: str, key: str, request_hash: str = "h") -> dict[str, Any]:
    return {"p_user_id": user, "p_model_id": model, "p_prompt": "a race", "p_settings": {},
            "p_idempotency_key": key, "p_request_hash": request_hash}


def test_100_generations_with_credits_for_2(stack: RunningStack, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=4)
    sql("select public.grant_initial_credits(%s, %s)", user, f"dev-{uuid.uuid4()}")
    outcomes = race(stack, [("create_video_job", job_args(user, model, str(uuid.uuid4())))
                            for _ in range(100)])
    counts = Counter(kind if kind == "ok" else message for kind, message in outcomes)
    assert counts == {"ok": 2, "insufficient_credits": 98}
    assert balance(sql, user) == (2, 10)
    assert sql("select count(*) from public.video_jobs where user_id = %s", user) == [(2,)]
    assert ledger_violations(sql, [user]) == []


def test_50_requests_with_one_key_make_one_job(stack: RunningStack, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=4)
    sql("select public.add_credits(%s, 100, 'admin_adjustment')", user)
    key = str(uuid.uuid4())
    outcomes = race(stack, [("create_video_job", job_args(user, model, key))] * 50)
    fresh = [data for kind, data in outcomes if kind == "ok" and not data["replayed"]]
    replays = [data for kind, data in outcomes if kind == "ok" and data["replayed"]]
    errors = Counter(data for kind, data in outcomes if kind == "error")
    assert len(fresh) == 1
    assert set(errors) <= {"idempotency_key_in_use"}
    assert all(r["response"] == fresh[0]["response"] for r in replays)
    assert sql("select count(*) from public.video_jobs where user_id = %s", user) == [(1,)]
    assert balance(sql, user)[0] == 96
    assert ledger_violations(sql, [user]) == []


def test_one_initial_grant_per_device_under_race(stack: RunningStack, sql: SqlRunner) -> None:
    device = f"dev-{uuid.uuid4()}"
    users = [new_user(sql) for _ in range(20)]
    outcomes = race(stack, [("grant_initial_credits", {"p_user_id": u, "p_device_id": device})
                            for u in users])
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert sorted(data for _, data in outcomes) == [False] * 19 + [True]
    assert sql("select count(*) from public.users where device_id = %s", device) == [(1,)]
    assert sum(balance(sql, u)[0] for u in users) == 10
    assert ledger_violations(sql, users) == []


def test_one_purchase_credit_per_transaction_under_race(stack: RunningStack,
                                                        sql: SqlRunner) -> None:
    user = new_user(sql)
    tx = f"tx-{uuid.uuid4()}"
    args = {"p_user_id": user, "p_amount": 25, "p_reason": "iap_purchase", "p_transaction_id": tx}
    outcomes = race(stack, [("add_credits", args)] * 20)
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert sorted(data["already_processed"] for _, data in outcomes) == [False] + [True] * 19
    assert balance(sql, user) == (25, 25)
    assert ledger_violations(sql, [user]) == []


def test_fail_and_complete_race_refunds_at_most_once(stack: RunningStack,
                                                     sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=4)
    sql("select public.add_credits(%s, 40, 'admin_adjustment')", user)
    jobs = [sql("select public.create_video_job(%s, %s, 'x', '{}', %s, 'h')",
                user, model, str(uuid.uuid4()))[0][0]["response"]["job_id"] for _ in range(10)]
    calls: list[tuple[str, dict[str, Any]]] = []
    for job in jobs:
        calls += [("fail_video_job", {"p_job_id": job, "p_error": "boom"})] * 3
        calls += [("complete_video_job", {"p_job_id": job, "p_video_path": "v.mp4"})] * 2
    outcomes = race(stack, calls)
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    failed = sql("select count(*) from public.video_jobs where user_id = %s and status = 'failed'",
                 user)[0][0]
    assert balance(sql, user)[0] == 4 * failed
    assert ledger_violations(sql, [user]) == []


def test_workers_never_claim_the_same_job(stack: RunningStack, sql: SqlRunner) -> None:
    user, model = new_user(sql), new_model(sql, cost=1)
    sql("select public.add_credits(%s, 30, 'admin_adjustment')", user)
    mine = {sql("select public.create_video_job(%s, %s, 'x', '{}', %s, 'h')",
                user, model, str(uuid.uuid4()))[0][0]["response"]["job_id"] for _ in range(30)}
    outcomes = race(stack, [("claim_pending_jobs", {"p_worker": f"w{i}", "p_limit": 5})
                            for i in range(20)])
    claimed: list[str] = [row["job_id"] for _, rows in outcomes for row in rows]
    assert len(claimed) == len(set(claimed))
    owners: Callable[[], list[tuple[Any, ...]]] = lambda: sql(  # noqa: E731
        "select count(*) from public.video_jobs where user_id = %s and lease_owner is not null",
        user)
    assert owners()[0][0] == len(mine & set(claimed))


def test_users_swapping_devices_do_not_deadlock(stack: RunningStack, sql: SqlRunner) -> None:
    """U1 claims U2's device while U2 claims U1's: both must complete.

    A third session holds the claim of U2's device, so U1's call is inside the function
    when U2's call runs: the interleaving that deadlocks when each call locks its own
    user first and the other user later.
    """
    u1, u2 = sorted(new_user(sql) for _ in range(2))
    d1, d2 = f"dev-{uuid.uuid4()}", f"dev-{uuid.uuid4()}"
    sql("select public.grant_initial_credits(%s, %s)", u1, d1)
    sql("select public.grant_initial_credits(%s, %s)", u2, d2)
    url = stack.config.superuser_db_url

    def waiting(pid: int) -> bool:
        return sql("select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                   pid) == [(True,)]

    def claim(conn: psycopg.Connection[Any], user: str, device: str) -> Any:
        return conn.execute("select public.grant_initial_credits(%s, %s)",
                            (user, device)).fetchone()

    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as first, \
            psycopg.connect(url, autocommit=True) as second, ThreadPoolExecutor(2) as pool:
        blocker.execute("select 1 from public.device_claims where device_id = %s for update",
                        (d2,))
        one = pool.submit(claim, first, u1, d2)
        assert wait_until(lambda: waiting(first.info.backend_pid), 10)
        two = pool.submit(claim, second, u2, d1)
        assert wait_until(lambda: two.done() or waiting(second.info.backend_pid), 10)
        blocker.commit()
        assert one.result(timeout=30) == (False,)  # completed, and no second grant
        assert two.result(timeout=30) == (False,)
    assert dict(sql("select id::text, device_id from public.users where id = any(%s::uuid[])",
                    [u1, u2])) == {u1: d2, u2: d1}
    assert ledger_violations(sql, [u1, u2]) == []
