"""The schema of supabase/migrations: tables, constraints, indexes, privileges, lints, triggers."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from rendio_backend.dbtools.lint import failing, lint
from tests.support.ledger_model import new_user
from tests.support.stack import RunningStack, SqlRunner

TABLES = ("users", "device_claims", "models", "video_jobs", "quota_log", "idempotency_log",
          "iap_products", "video_jobs_archive", "worker_heartbeats")
SERVICE_FUNCTIONS = (
    "grant_initial_credits", "add_credits", "deduct_credits", "apply_iap_refund",
    "create_video_job", "claim_pending_jobs", "claim_processing_jobs", "mark_job_processing",
    "complete_video_job", "fail_video_job", "fail_stuck_jobs", "purge_expired_idempotency_keys",
    "archive_old_jobs", "verify_ledger", "apply_app_store_notification",
    "pending_storage_removals", "forget_storage_removals",
    "record_worker_heartbeat", "release_job_lease", "renew_job_lease",
)
CLIENT_FUNCTIONS = ("get_my_credits", "get_my_credit_history", "soft_delete_video_job")


def test_every_public_table_of_ours_has_rls(sql: SqlRunner) -> None:
    rows = sql(
        "select c.relname, c.relrowsecurity from pg_class c "
        "where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' "
        "and c.relname = any(%s)", list(TABLES))
    assert {name: rls for name, rls in rows} == dict.fromkeys(TABLES, True)


def test_schema_passes_the_advisor_lints(stack: RunningStack) -> None:
    ours = set(TABLES) | set(SERVICE_FUNCTIONS) | set(CLIENT_FUNCTIONS)
    problems = [
        r for r in failing(lint(stack.config.db_url))
        if r.metadata.get("name") in ours or r.metadata.get("schema") in ("private", "storage")
    ]
    assert problems == [], [f"{r.level} {r.name}: {r.detail}" for r in problems]


def test_seed_indexes_exist(sql: SqlRunner) -> None:
    rows = sql("select indexname, indexdef from pg_indexes where schemaname = 'public'")
    defs: dict[str, str] = dict(rows)
    for name in ("idx_users_device_id", "idx_users_apple_sub", "idx_models_provider",
                 "idx_models_featured", "idx_video_jobs_user", "idx_video_jobs_status",
                 "idx_video_jobs_provider", "idx_video_jobs_deleted", "idx_quota_log_user",
                 "idx_quota_log_transaction", "idx_idempotency_user", "idx_idempotency_expires"):
        assert name in defs, name
    assert "WHERE (is_featured = true)" in defs["idx_models_featured"]
    assert "WHERE (deleted_at IS NULL)" in defs["idx_video_jobs_deleted"]
    assert "(user_id, created_at DESC)" in defs["idx_video_jobs_user"]
    assert defs["idx_users_device_id"].startswith("CREATE UNIQUE INDEX")


def test_users_defaults_match_the_seed(sql: SqlRunner) -> None:
    user_id = new_user(sql)
    rows = sql(
        "select email, device_id, apple_sub, is_guest, tier, credits_remaining, credits_total, "
        "initial_grant_claimed, language, theme_preference from public.users where id = %s",
        user_id)
    assert rows == [(None, None, None, True, "free", 0, 0, False, "en", "system")]


@pytest.mark.parametrize(("column", "value"), [
    ("tier", "gold"), ("credits_remaining", -1), ("credits_total", -1),
    ("theme_preference", "neon"), ("language", "not a language"),
])
def test_users_checks(sql: SqlRunner, column: str, value: object) -> None:
    user_id = new_user(sql)
    with pytest.raises(psycopg.errors.CheckViolation):
        sql(f"update public.users set {column} = %s where id = %s", value, user_id)


def test_quota_log_reason_is_constrained(sql: SqlRunner) -> None:
    rows = sql("select pg_get_constraintdef(oid) from pg_constraint "
               "where conname = 'quota_log_reason_check'")
    definition = rows[0][0]
    for reason in ("initial_grant", "video_generation", "generation_failed_refund",
                   "iap_purchase", "iap_refund", "admin_adjustment"):
        assert f"'{reason}'" in definition


def test_security_definer_functions_are_locked_down(sql: SqlRunner) -> None:
    rows = sql(
        "select p.proname, p.prosecdef, coalesce(p.proconfig, '{}'), "
        "has_function_privilege('anon', p.oid, 'execute'), "
        "has_function_privilege('authenticated', p.oid, 'execute'), "
        "has_function_privilege('service_role', p.oid, 'execute') "
        "from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = any(%s)",
        list(SERVICE_FUNCTIONS + CLIENT_FUNCTIONS))
    seen = set()
    for name, definer, config, anon, authenticated, service in rows:
        seen.add(name)
        assert 'search_path=""' in config, name
        assert not anon, name
        if name in SERVICE_FUNCTIONS:
            assert definer and service and not authenticated, name
        else:
            assert not definer and authenticated, name
    assert seen == set(SERVICE_FUNCTIONS + CLIENT_FUNCTIONS)


def test_private_schema_is_not_reachable_by_clients(sql: SqlRunner) -> None:
    for role in ("anon", "authenticated", "service_role"):
        assert sql("select has_schema_privilege(%s, 'private', 'usage')", role) == [(False,)]


def test_trigger_creates_guest_and_regular_users(sql: SqlRunner) -> None:
    guest = new_user(sql)
    member = new_user(sql, email=f"{uuid.uuid4().hex}@example.com", anonymous=False)
    rows: dict[str, bool] = dict(sql(
        "select id::text, is_guest from public.users where id = any(%s::uuid[])",
        [guest, member]))
    assert rows == {guest: True, member: False}


def test_trigger_runs_as_gotrue_role(stack: RunningStack, sql: SqlRunner) -> None:
    # GoTrue writes auth.users as supabase_auth_admin, which has no rights on public.
    user_id = str(uuid.uuid4())
    with psycopg.connect(stack.config.role_db_url("supabase_auth_admin"), autocommit=True) as c:
        c.execute("insert into auth.users (id, is_anonymous, aud, role) "
                  "values (%s, true, 'authenticated', 'authenticated')", (user_id,))
    assert sql("select is_guest, credits_remaining from public.users where id = %s",
               user_id) == [(True, 0)]


def _link_apple(sql: SqlRunner, user_id: str, apple_sub: str) -> None:
    """What Auth writes when a guest links Apple: an identity row, then the user."""
    sql("insert into auth.identities (provider_id, user_id, identity_data, provider) "
        "values (%s, %s, %s::jsonb, 'apple')", apple_sub, user_id,
        f'{{"sub": "{apple_sub}"}}')
    sql("update auth.users set is_anonymous = false, "
        "raw_app_meta_data = '{\"provider\": \"anonymous\", \"providers\": [\"apple\"]}' "
        "where id = %s", user_id)


def test_linking_apple_keeps_the_user_and_clears_guest(sql: SqlRunner) -> None:
    user_id = new_user(sql)
    apple_sub = f"001234.{uuid.uuid4().hex}.0001"
    _link_apple(sql, user_id, apple_sub)
    assert sql("select is_guest, apple_sub from public.users where id = %s", user_id) == [
        (False, apple_sub)]
    # with an email as well (Auth never unlinks a user's last identity), unlinking Apple
    # releases the subject
    sql("update auth.users set email = %s where id = %s", f"{uuid.uuid4().hex}@example.com",
        user_id)
    sql("delete from auth.identities where provider = 'apple' and provider_id = %s", apple_sub)
    assert sql("select apple_sub from public.users where id = %s", user_id) == [(None,)]


def test_apple_sub_cannot_be_claimed_through_user_metadata(sql: SqlRunner) -> None:
    victim, attacker = new_user(sql), new_user(sql)
    victim_sub = f"001234.{uuid.uuid4().hex}.0001"
    _link_apple(sql, attacker, f"001234.{uuid.uuid4().hex}.0002")
    # a user can write any user_metadata through PUT /auth/v1/user
    sql("update auth.users set raw_user_meta_data = %s::jsonb where id = %s",
        f'{{"sub": "{victim_sub}", "provider_id": "{victim_sub}"}}', attacker)
    _link_apple(sql, victim, victim_sub)
    assert sql("select id::text from public.users where apple_sub = %s", victim_sub) == [
        (victim,)]


def test_an_apple_subject_held_elsewhere_never_fails_sign_in(sql: SqlRunner) -> None:
    first, second = new_user(sql), new_user(sql)
    apple_sub = f"001234.{uuid.uuid4().hex}.0001"
    sql("update public.users set apple_sub = %s, is_guest = false where id = %s",
        apple_sub, first)  # e.g. a subject still recorded on another account
    _link_apple(sql, second, apple_sub)  # no error reaches Auth
    assert sql("select apple_sub from public.users where id = %s", second) == [(None,)]


def test_deleting_the_auth_user_deletes_the_profile(sql: SqlRunner) -> None:
    user_id = new_user(sql)
    sql("delete from auth.users where id = %s", user_id)
    assert sql("select count(*) from public.users where id = %s", user_id) == [(0,)]
