"""Who can read and write what, through PostgREST, as anon, two users and the service role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError
from postgrest.types import ReturnMethod

from tests.support.ledger_model import api_error, balance, data, new_model, new_user, rest
from tests.support.stack import RunningStack, SqlRunner

# Clients may read only some columns of video_jobs, so a PATCH asks for no representation.
MINIMAL = ReturnMethod.minimal


@dataclass
class World:
    alice: str
    bob: str
    model: str
    hidden_model: str
    alice_job: str
    bob_job: str
    anon: SyncPostgrestClient
    as_alice: SyncPostgrestClient
    as_bob: SyncPostgrestClient
    service: SyncPostgrestClient


@pytest.fixture(scope="module")
def world(stack: RunningStack) -> Iterator[World]:
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:

        def sql(query: str, *params: Any) -> list[tuple[Any, ...]]:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

        alice, bob = new_user(sql), new_user(sql)
        model = new_model(sql, cost=4)
        hidden = new_model(sql, cost=4, available=False)
        jobs = []
        for user in (alice, bob):
            sql("select public.grant_initial_credits(%s, %s)", user, f"dev-{uuid.uuid4()}")
            rows = sql("select public.create_video_job(%s, %s, 'a cat', '{}', %s, 'h')",
                       user, model, str(uuid.uuid4()))
            jobs.append(rows[0][0]["response"]["job_id"])
        sql("insert into public.iap_products (product_id, credits, active) values "
            "(%s, 50, true), (%s, 100, false)",
            f"active.{alice}", f"retired.{alice}")
    cfg = stack.config
    stack.reload_schema("/rpc/get_my_credits")
    yield World(
        alice=alice, bob=bob, model=model, hidden_model=hidden,
        alice_job=jobs[0], bob_job=jobs[1],
        anon=rest(cfg.api_url, cfg.anon_key),
        as_alice=rest(cfg.api_url, cfg.anon_key, stack.user_jwt(alice)),
        as_bob=rest(cfg.api_url, cfg.anon_key, stack.user_jwt(bob)),
        service=rest(cfg.api_url, cfg.service_role_key),
    )


def _denied(call: Any) -> str | None:
    with pytest.raises(APIError) as info:
        call()
    return api_error(info.value)[0]


# --- anon ---------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["users", "video_jobs", "quota_log", "idempotency_log",
                                   "device_claims", "video_jobs_archive"])
def test_anon_reads_no_private_table(world: World, table: str) -> None:
    assert _denied(lambda: world.anon.table(table).select("*").execute()) == "42501"


def test_anon_sees_only_available_models(world: World) -> None:
    ids = {m["id"] for m in data(world.anon.table("models").select("id"))}
    assert world.model in ids and world.hidden_model not in ids


def test_anon_sees_only_active_products(world: World) -> None:
    ids = {p["product_id"] for p in data(world.anon.table("iap_products").select("*"))}
    assert f"active.{world.alice}" in ids and f"retired.{world.alice}" not in ids


def test_anon_cannot_call_client_functions(world: World) -> None:
    assert _denied(lambda: world.anon.rpc("get_my_credits", {}).execute()) == "42501"


# --- users --------------------------------------------------------------------------


def test_user_reads_only_own_rows(world: World) -> None:
    users = data(world.as_alice.table("users").select("id"))
    assert users == [{"id": world.alice}]
    jobs = data(world.as_alice.table("video_jobs").select("job_id, user_id"))
    assert jobs == [{"job_id": world.alice_job, "user_id": world.alice}]
    log = data(world.as_alice.table("quota_log").select("user_id"))
    assert {row["user_id"] for row in log} == {world.alice} and len(log) == 2


@pytest.mark.parametrize("table", ["idempotency_log", "device_claims", "video_jobs_archive"])
def test_user_reads_no_internal_table(world: World, table: str) -> None:
    assert _denied(lambda: world.as_alice.table(table).select("*").execute()) == "42501"


@pytest.mark.parametrize("changes", [
    {"credits_remaining": 1000}, {"credits_total": 1000}, {"tier": "premium"},
    {"is_guest": False}, {"initial_grant_claimed": False}, {"device_id": "other"},
])
def test_user_cannot_patch_money_or_identity(world: World, sql: SqlRunner,
                                             changes: dict[str, Any]) -> None:
    before = sql("select to_jsonb(u) - 'updated_at' from public.users u where id = %s",
                 world.alice)
    code = _denied(lambda: world.as_alice.table("users").update(changes)
                   .eq("id", world.alice).execute())
    assert code == "42501"
    assert sql("select to_jsonb(u) - 'updated_at' from public.users u where id = %s",
               world.alice) == before


def test_user_updates_language_and_theme_of_own_row_only(world: World, sql: SqlRunner) -> None:
    world.as_alice.table("users").update({"language": "tr", "theme_preference": "dark"}) \
        .eq("id", world.alice).execute()
    world.as_alice.table("users").update({"language": "es"}).eq("id", world.bob).execute()
    rows: dict[str, str] = dict(sql(
        "select id::text, language from public.users where id = any(%s::uuid[])",
        [world.alice, world.bob]))
    assert rows == {world.alice: "tr", world.bob: "en"}


def test_user_cannot_insert_jobs_or_ledger_rows(world: World) -> None:
    job = {"user_id": world.alice, "model_id": world.model, "prompt": "free", "credits_used": 0}
    assert _denied(lambda: world.as_alice.table("video_jobs").insert(job).execute()) == "42501"
    entry = {"user_id": world.alice, "change": 100, "reason": "admin_adjustment",
             "balance_after": 100, "total_after": 100, "version": 99}
    assert _denied(lambda: world.as_alice.table("quota_log").insert(entry).execute()) == "42501"
    assert _denied(lambda: world.as_alice.table("quota_log").delete()
                   .eq("user_id", world.alice).execute()) == "42501"


def test_user_cannot_change_job_state(world: World) -> None:
    assert _denied(lambda: world.as_alice.table("video_jobs")
                   .update({"status": "failed"}, returning=MINIMAL)
                   .eq("job_id", world.alice_job).execute()) == "42501"


@pytest.mark.parametrize(("function", "args"), [
    ("add_credits", {"p_amount": 100, "p_reason": "admin_adjustment"}),
    ("deduct_credits", {"p_amount": 1, "p_reason": "admin_adjustment"}),
    ("grant_initial_credits", {"p_device_id": "another-device"}),
])
def test_user_cannot_call_privileged_functions(world: World, sql: SqlRunner, function: str,
                                               args: dict[str, Any]) -> None:
    before = balance(sql, world.alice)
    with pytest.raises(APIError):
        world.as_alice.rpc(function, {"p_user_id": world.alice, **args}).execute()
    assert balance(sql, world.alice) == before


def test_user_cannot_fail_a_job_for_a_refund(world: World) -> None:
    with pytest.raises(APIError):
        world.as_alice.rpc("fail_video_job", {"p_job_id": world.alice_job,
                                              "p_error": "x"}).execute()


def test_user_reads_own_balance_and_history(world: World, sql: SqlRunner) -> None:
    credits = data(world.as_alice.rpc("get_my_credits", {}))
    remaining, total = balance(sql, world.alice)
    assert credits == {"credits_remaining": remaining, "credits_total": total,
                       "tier": "free", "is_guest": True}
    limit: dict[str, Any] = {"p_limit": 10}
    history = data(world.as_alice.rpc("get_my_credit_history", limit))
    assert [row["version"] for row in history] == [2, 1]
    assert {row["user_id"] for row in history} == {world.alice}


def test_soft_delete_own_job_only(stack: RunningStack, world: World, sql: SqlRunner) -> None:
    # Through the function: own job yes, another user's job no.
    assert data(world.as_bob.rpc("soft_delete_video_job",
                                 {"p_job_id": world.alice_job})) is False
    assert data(world.as_alice.rpc("soft_delete_video_job",
                                 {"p_job_id": world.alice_job})) is True
    assert data(world.as_alice.rpc("soft_delete_video_job",
                                 {"p_job_id": world.alice_job})) is False
    # No undelete: the policy's USING only matches live jobs, so nothing changes.
    world.as_alice.table("video_jobs").update({"deleted_at": None}, returning=MINIMAL) \
        .eq("job_id", world.alice_job).execute()
    assert sql("select deleted_at is not null from public.video_jobs where job_id = %s",
               world.alice_job) == [(True,)]
    # A PATCH of deleted_at works on own live jobs; another user's job is not matched.
    user = new_user(sql)
    sql("select public.add_credits(%s, 10, 'admin_adjustment')", user)
    job = sql("select public.create_video_job(%s, %s, 'x', '{}', %s, 'h')",
              user, world.model, str(uuid.uuid4()))[0][0]["response"]["job_id"]
    as_user = rest(stack.config.api_url, stack.config.anon_key, stack.user_jwt(user))
    world.as_bob.table("video_jobs").update({"deleted_at": "now()"}, returning=MINIMAL) \
        .eq("job_id", job).execute()
    with pytest.raises(APIError) as info:  # WITH CHECK: the new row must be deleted
        as_user.table("video_jobs").update({"deleted_at": None}, returning=MINIMAL) \
            .eq("job_id", job).execute()
    assert api_error(info.value)[0] == "42501"
    assert sql("select deleted_at from public.video_jobs where job_id = %s", job) == [(None,)]
    as_user.table("video_jobs").update({"deleted_at": "2026-01-01T00:00:00Z"}, returning=MINIMAL) \
        .eq("job_id", job).execute()
    assert sql("select deleted_at is not null from public.video_jobs where job_id = %s",
               job) == [(True,)]


# --- service role -------------------------------------------------------------------


def test_service_role_reads_everything(world: World) -> None:
    ids = {u["id"] for u in data(world.service.table("users").select("id")
                                 .in_("id", [world.alice, world.bob]))}
    assert ids == {world.alice, world.bob}
    world.service.table("idempotency_log").select("*").limit(1).execute()
    world.service.table("device_claims").select("*").limit(1).execute()
    models = {m["id"] for m in data(world.service.table("models").select("id"))}
    assert world.hidden_model in models


def test_service_role_cannot_delete_jobs(world: World, sql: SqlRunner) -> None:
    # An unfinished job deleted would keep its charge with nothing left to refund.
    job = sql("select job_id::text from public.video_jobs where user_id = %s limit 1",
              world.alice)
    assert job, "the world fixture creates jobs"
    with pytest.raises(APIError) as info:
        world.service.table("video_jobs").delete().eq("job_id", job[0][0]).execute()
    assert api_error(info.value)[0] == "42501"
    assert sql("select count(*) from public.video_jobs where job_id = %s", job[0][0]) == [(1,)]


def test_service_role_moves_money_only_through_functions(world: World, sql: SqlRunner) -> None:
    before = balance(sql, world.bob)
    with pytest.raises(APIError) as info:
        world.service.table("users").update({"credits_remaining": 999}) \
            .eq("id", world.bob).execute()
    assert api_error(info.value)[0] == "42501"
    with pytest.raises(APIError):
        world.service.table("quota_log").insert({
            "user_id": world.bob, "change": 5, "reason": "admin_adjustment",
            "balance_after": 5, "total_after": 5, "version": 50}).execute()
    assert balance(sql, world.bob) == before
    args: dict[str, Any] = {"p_user_id": world.bob, "p_amount": 5,
                            "p_reason": "admin_adjustment"}
    result = data(world.service.rpc("add_credits", args))
    assert result["credits_remaining"] == before[0] + 5


def test_insufficient_credits_maps_to_http_402(world: World, sql: SqlRunner) -> None:
    available = balance(sql, world.bob)[0]
    with pytest.raises(APIError) as info:
        args: dict[str, Any] = {"p_user_id": world.bob, "p_amount": available + 1,
                                "p_reason": "admin_adjustment"}
        world.service.rpc("deduct_credits", args).execute()
    code, message, details = api_error(info.value)
    assert (code, message) == ("PT402", "insufficient_credits")
    assert details == {"required": available + 1, "available": available}
