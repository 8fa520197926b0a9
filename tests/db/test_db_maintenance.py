"""Maintenance in SQL: the sweeper, the key purge, and archiving that keeps the ledger linked.

Archiving moves a job to video_jobs_archive; its charge and refund keep their job_id, so
verify_ledger checks archived jobs like live ones and still reports a ledger row whose
job exists nowhere (an orphan). The archived jobs' files are queued for the Storage API.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rendio_backend.dbtools.migrations import migrate
from tests.support.ledger_model import ledger_violations, new_model, new_user
from tests.support.stack import MIGRATIONS, RunningStack, ScratchDb, SqlRunner

# The migration that keeps ledger rows linked through archiving.
LINKING = next(MIGRATIONS.glob("*_keep_ledger_linked_on_archive.sql"))


def _funded(sql: SqlRunner, call: Any, credits: int = 20) -> str:
    user = new_user(sql)
    call("add_credits", user, credits, "admin_adjustment", None)
    return user


def _job(call: Any, user: str, model: str) -> str:
    created = call("create_video_job", user, model, "a heron at dawn", "{}",
                   str(uuid.uuid4()), "h")
    return str(created["response"]["job_id"])


def _age(sql: SqlRunner, jobs: list[str], days: int) -> None:
    sql("update public.video_jobs set created_at = now() - make_interval(days => %s) "
        "where job_id = any(%s::uuid[])", days, jobs)


@contextmanager
def _deleted_afterwards(sql: SqlRunner, user: str) -> Iterator[None]:
    """For a test that breaks a user's ledger on purpose: the user goes afterwards, its
    ledger with it, so later checks of the whole ledger in the session stay clean."""
    try:
        yield
    finally:
        sql("delete from auth.users where id = %s", user)


def _ledger(sql: SqlRunner, user: str) -> list[tuple[Any, ...]]:
    return sql("select reason, change, job_id::text from public.quota_log "
               "where user_id = %s and job_id is not null order by version", user)


# --- archiving keeps the ledger linked ---------------------------------------------


def test_archive_keeps_charges_and_refunds_linked(call: Any, sql: SqlRunner) -> None:
    user, model = _funded(sql, call), new_model(sql, cost=3)
    done, failed, running = (_job(call, user, model) for _ in range(3))
    call("complete_video_job", done, f"videos/{user}/{done}.mp4", f"{user}/{done}.jpg")
    call("fail_video_job", failed, "provider said ERROR")
    before = _ledger(sql, user)
    assert len(before) == 4  # three charges, one refund
    _age(sql, [done, failed, running], 91)

    assert call("archive_old_jobs", "90 days") >= 2
    archived = sql("select job_id::text, status from public.video_jobs_archive "
                   "where user_id = %s order by status", user)
    assert archived == [(done, "completed"), (failed, "failed")]
    assert sql("select job_id::text from public.video_jobs where user_id = %s", user) == [
        (running,)]
    assert _ledger(sql, user) == before  # no job_id was nulled
    assert ledger_violations(sql, [user]) == []


def test_archived_jobs_are_still_charged_and_refunded_at_most_once(
    call: Any, sql: SqlRunner
) -> None:
    user, model = _funded(sql, call), new_model(sql, cost=2)
    job = _job(call, user, model)
    call("fail_video_job", job, "timeout")
    _age(sql, [job], 100)
    call("archive_old_jobs", "90 days")
    for reason, change in (("generation_failed_refund", 2), ("video_generation", -2)):
        with pytest.raises(psycopg.errors.UniqueViolation):
            sql("select private.apply_ledger_entry(%s, %s, %s, %s)", user, change, reason, job)
    assert ledger_violations(sql, [user]) == []


def test_an_orphan_charge_is_reported(stack: RunningStack, call: Any, sql: SqlRunner) -> None:
    user, other = _funded(sql, call), _funded(sql, call)
    someone_elses = _job(call, other, new_model(sql, cost=1))
    # Written through the functions, a charge for no job (or another user's) is refused;
    # past them, the ledger's own job check refuses it too.
    for job in (str(uuid.uuid4()), someone_elses):
        with pytest.raises(psycopg.Error) as refused:
            call("deduct_credits", user, 1, "video_generation", job)
        assert (refused.value.sqlstate, refused.value.diag.message_primary) == (
            "PT404", "not_found")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            sql("select private.apply_ledger_entry(%s, -1, 'video_generation', %s)", user, job)
    # Written past the trigger (replica mode skips it), it is reported.
    ghost = str(uuid.uuid4())
    with _deleted_afterwards(sql, user), \
            psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("select private.apply_ledger_entry(%s, -1, 'video_generation', %s)",
                     (user, ghost))
        assert [(invariant, ghost in text) for _, invariant, text in
                ledger_violations(sql, [user])] == [("ledger_job_exists", True)]


def test_a_lost_archived_job_leaves_reported_orphans(call: Any, sql: SqlRunner) -> None:
    user, model = _funded(sql, call), new_model(sql, cost=2)
    job = _job(call, user, model)
    call("fail_video_job", job, "provider said ERROR")
    _age(sql, [job], 91)
    call("archive_old_jobs", "90 days")
    assert ledger_violations(sql, [user]) == []
    with _deleted_afterwards(sql, user):
        sql("delete from public.video_jobs_archive where job_id = %s", job)
        found = ledger_violations(sql, [user])
        assert [invariant for _, invariant, _ in found] == ["ledger_job_exists"] * 2
        assert all(job in text for _, _, text in found)


def test_archive_queues_the_files_for_the_storage_api(call: Any, sql: SqlRunner) -> None:
    user, model = _funded(sql, call), new_model(sql, cost=1)
    with_thumbnail, video_only, failed = (_job(call, user, model) for _ in range(3))
    call("complete_video_job", with_thumbnail, f"{user}/{with_thumbnail}.mp4",
         f"{user}/{with_thumbnail}.jpg")
    call("complete_video_job", video_only, f"videos/{user}/{video_only}.mp4", None)
    call("fail_video_job", failed, "x")
    _age(sql, [with_thumbnail, video_only, failed], 91)
    call("archive_old_jobs", "90 days")

    jobs = [with_thumbnail, video_only, failed]
    queued = sql("select bucket, path, job_id::text from private.storage_removals "
                 "where job_id = any(%s::uuid[])", jobs)
    assert sorted(queued) == sorted([
        ("thumbnails", f"{user}/{with_thumbnail}.jpg", with_thumbnail),
        ("videos", f"{user}/{with_thumbnail}.mp4", with_thumbnail),
        ("videos", f"videos/{user}/{video_only}.mp4", video_only),
    ])
    ids = [row[0] for row in sql("select id from private.storage_removals "
                                 "where job_id = any(%s::uuid[])", jobs)]
    assert sql("select count(*) from public.pending_storage_removals(2)") == [(2,)]
    assert call("forget_storage_removals", ids) == 3
    assert call("forget_storage_removals", ids) == 0
    assert sql("select count(*) from private.storage_removals "
               "where job_id = any(%s::uuid[])", jobs) == [(0,)]


def test_storage_queue_is_for_the_service_role_only(stack: RunningStack) -> None:
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:
        for role in ("anon", "authenticated"):
            conn.execute(f"set role {role}")
            for query in ("select public.pending_storage_removals(10)",
                          "select public.forget_storage_removals('{1}')",
                          "select * from public.stray_job_files()",
                          "select * from private.storage_removals"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(query)
            conn.execute("reset role")


# --- the sweeper and the purge --------------------------------------------------------


def test_stuck_jobs_are_failed_and_refunded_once(call: Any, sql: SqlRunner) -> None:
    user, model = _funded(sql, call, credits=10), new_model(sql, cost=4)
    late, exhausted = _job(call, user, model), _job(call, user, model)
    healthy = _job(call, user, new_model(sql, cost=1))
    sql("update public.video_jobs set deadline_at = now() - interval '1 second' "
        "where job_id = %s", late)
    sql("update public.video_jobs set attempts = 5, lease_owner = 'gone', "
        "lease_expires_at = now() - interval '1 minute' where job_id = %s", exhausted)
    assert sql("select credits_remaining from public.users where id = %s", user) == [(1,)]

    assert call("fail_stuck_jobs", "2 hours") >= 2
    call("fail_stuck_jobs", "2 hours")  # a second run changes nothing of ours (below)
    statuses = dict(sql("select job_id::text, status from public.video_jobs "
                        "where user_id = %s", user))
    assert statuses == {late: "failed", exhausted: "failed", healthy: "pending"}
    refunds = sql("select job_id::text, change from public.quota_log where user_id = %s "
                  "and reason = 'generation_failed_refund' order by job_id", user)
    assert sorted(refunds) == sorted([(late, 4), (exhausted, 4)])
    assert call("fail_video_job", late, "again")["credits_refunded"] == 0
    assert sql("select credits_remaining from public.users where id = %s", user) == [(9,)]
    assert ledger_violations(sql, [user]) == []


def test_purge_deletes_expired_keys_only(call: Any, sql: SqlRunner) -> None:
    user = new_user(sql)
    expired, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    for key, expires in ((expired, "now() - interval '1 second'"),
                         (fresh, "now() + interval '1 hour'")):
        sql("insert into public.idempotency_log (user_id, idempotency_key, request_hash, "
            f"operation_type, expires_at) values (%s, %s, 'h', 'video_generation', {expires})",
            user, key)
    assert call("purge_expired_idempotency_keys") >= 1
    assert sql("select idempotency_key::text from public.idempotency_log where user_id = %s",
               user) == [(fresh,)]


# --- the migration relinks rows unlinked by earlier archive runs -----------------------


def test_migration_relinks_rows_nulled_by_earlier_archiving(
    db: ScratchDb, tmp_path: Path
) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < LINKING.name:
            shutil.copy(path, before)
    migrate(db.url, before)

    user = str(uuid.uuid4())
    db.query("insert into auth.users (id, aud, role) values (%s, 'authenticated', "
             "'authenticated')", user)
    db.query("update public.users set max_jobs_in_flight = 100 where id = %s", user)
    model = db.query("insert into public.models (name, category, provider, "
                     "cost_per_generation) values ('m', 'test', 'fal', 2) returning id")[0][0]
    db.query("select public.add_credits(%s, 20, 'admin_adjustment')", user)
    with psycopg.connect(db.superuser_url) as conn:  # one transaction: two identical charges
        jobs = [conn.execute(
            "select public.create_video_job(%s, %s, 'p', '{}', gen_random_uuid(), 'h') "
            "-> 'response' ->> 'job_id'", (user, model)).fetchone()[0] for _ in range(2)]
    with psycopg.connect(db.superuser_url) as conn:  # one sweep: two identical refunds
        for job in jobs:
            conn.execute("update public.video_jobs set deadline_at = now() where job_id = %s",
                         (job,))
        conn.execute("select public.fail_stuck_jobs()")
    done = db.query("select public.create_video_job(%s, %s, 'p', '{}', gen_random_uuid(), "
                    "'h') -> 'response' ->> 'job_id'", user, model)[0][0]
    db.query("select public.complete_video_job(%s, 'v.mp4')", done)
    db.query("update public.video_jobs set created_at = created_at - interval '91 days'")
    # The archived jobs' created_at is what the relinking matches: keep the charges' too.
    db.query("update public.quota_log set created_at = created_at - interval '91 days' "
             "where reason = 'video_generation'")
    db.query("select public.archive_old_jobs()")
    assert db.query("select count(*) from public.quota_log where job_id is not null") == [(0,)]

    shutil.copy(LINKING, before)
    migrate(db.url, before)
    linked = db.query("select reason, job_id::text from public.quota_log "
                      "where job_id is not null order by reason, job_id")
    assert linked == sorted([("generation_failed_refund", j) for j in jobs]
                            + [("video_generation", j) for j in [*jobs, done]])
    assert db.query("select * from public.verify_ledger()") == []

