"""`rendio db lint`: Supabase-advisor-style lints against deliberately bad and clean schemas."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from rendio_backend.dbtools.lint import LINTS, LintResult, _expand, failing, lint
from rendio_cli.db import app
from tests.support.stack import ScratchDb

runner = CliRunner()

BAD_SCHEMA = """
create table public.no_rls (id int primary key, password text);
grant select on public.no_rls to anon;

create table public.parent (id int primary key);
alter table public.parent enable row level security;
create table public.child (
  id int primary key, parent_id int references public.parent (id), owner uuid);
alter table public.child enable row level security;
grant select, update on public.child to anon, authenticated;
create index child_owner_a on public.child (owner);
create index child_owner_b on public.child (owner);
create policy "own rows" on public.child for select to authenticated
  using (owner = auth.uid());
create policy "also signed in" on public.child for select to authenticated using (true);
create policy "anyone updates" on public.child for update to anon using (true);
create policy "metadata" on public.child for insert to authenticated
  with check ((auth.jwt() -> 'user_metadata' ->> 'admin') = 'yes');

create function public.definer() returns int language sql security definer
  as $$ select 1 $$;

create view public.users_view as select id, email from auth.users;
grant select on public.users_view to anon;

create table public.policy_only (id int primary key);
create policy p on public.policy_only for select using (true);
"""

# Every expected finding: (lint name, a fragment of its cache_key).
EXPECTED = [
    ("rls_disabled_in_public", "public_no_rls"),
    ("sensitive_columns_exposed", "public_no_rls"),
    ("function_search_path_mutable", "public_definer"),
    ("anon_security_definer_function_executable", "public_definer"),
    ("authenticated_security_definer_function_executable", "public_definer"),
    ("unindexed_foreign_keys", "public_child_child_parent_id_fkey"),
    ("duplicate_index", "public_child"),
    ("rls_policy_always_true", "public_child_anyone updates"),
    ("auth_rls_initplan", "public_child_own rows"),
    ("rls_references_user_metadata", "public_child_metadata"),
    ("security_definer_view", "public_users_view"),
    ("auth_users_exposed", "public_users_view"),
    ("policy_exists_rls_disabled", "public_policy_only"),
    ("rls_enabled_no_policy", "public_parent"),
    ("multiple_permissive_policies", "public_child_authenticated_SELECT"),
]

CLEAN_SCHEMA = """
create schema private;
create table public.parent (id int primary key);
alter table public.parent enable row level security;
grant select on public.parent to authenticated;
create policy "signed in reads" on public.parent for select to authenticated using (true);

create table public.child (
  id int primary key,
  parent_id int not null references public.parent (id),
  owner uuid not null default auth.uid()
);
create index child_parent_id_idx on public.child (parent_id);
create index child_owner_idx on public.child (owner);
alter table public.child enable row level security;
grant select, update (parent_id) on public.child to authenticated;
create policy "own rows" on public.child for select to authenticated
  using (owner = (select auth.uid()));
create policy "own updates" on public.child for update to authenticated
  using (owner = (select auth.uid())) with check (owner = (select auth.uid()));

create function private.grant_credits(target uuid) returns void
language plpgsql security definer set search_path = ''
as $$ begin perform target; end $$;
revoke execute on function private.grant_credits(uuid) from public, anon, authenticated;
grant execute on function private.grant_credits(uuid) to service_role;

create function public.child_count() returns bigint
language sql stable security invoker set search_path = ''
as $$ select count(*) from public.child $$;

create view public.my_children with (security_invoker = on) as
  select id, parent_id from public.child;
grant select on public.my_children to authenticated;

create policy "own files" on storage.objects for select to authenticated
  using (bucket_id = 'videos' and (storage.foldername(name))[1] = (select auth.uid())::text);
"""


def apply_as_postgres(db: ScratchDb, ddl: str) -> None:
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(ddl.encode())


def keys(results: list[LintResult]) -> set[tuple[str, str]]:
    return {(r.name, r.cache_key) for r in results}


def test_each_lint_fires_on_a_bad_schema(db: ScratchDb) -> None:
    apply_as_postgres(db, BAD_SCHEMA)
    results = lint(db.url)
    for name, fragment in EXPECTED:
        assert any(r.name == name and fragment in r.cache_key for r in results), \
            (name, fragment, sorted(keys(results)))
    # The wrapped `(select auth.uid())` style would not be flagged; the select policy is.
    initplan = [r for r in results if r.name == "auth_rls_initplan"]
    assert {r.cache_key for r in initplan} == {
        "auth_rls_init_plan_public_child_own rows", "auth_rls_init_plan_public_child_metadata"}
    by_name = {r.name: r for r in results}
    assert by_name["rls_disabled_in_public"].level == "ERROR"
    assert by_name["unindexed_foreign_keys"].level == "INFO"
    assert by_name["duplicate_index"].metadata["indexes"] == ["child_owner_a", "child_owner_b"]
    assert by_name["rls_policy_always_true"].metadata["permissive_using"] is True
    assert by_name["function_search_path_mutable"].remediation.endswith(
        "?lint=0011_function_search_path_mutable")
    # Supabase-owned objects (auth.users, storage tables) are not ours to lint.
    assert not [r for r in results if r.metadata.get("schema") in ("auth", "extensions")]


def test_storage_policies_as_splinter_treats_them(db: ScratchDb) -> None:
    # Only the public-bucket lint reads policies on storage.objects; the policy lints skip
    # storage (Supabase owns it), as splinter does.
    apply_as_postgres(db, """
        insert into storage.buckets (id, name, public) values ('pub', 'pub', true);
        create policy "list pub" on storage.objects for select to public
          using (bucket_id = 'pub');
        create policy "slow" on storage.objects for insert to authenticated
          with check (owner_id = auth.uid()::text);
    """)
    results = lint(db.url)
    assert keys(results) == {
        ("public_bucket_allows_listing", "public_bucket_allows_listing_pub")}


def test_a_clean_schema_has_no_warn_or_error(db: ScratchDb) -> None:
    apply_as_postgres(db, CLEAN_SCHEMA)
    results = lint(db.url)
    assert failing(results) == [], [r.detail for r in failing(results)]
    result = runner.invoke(app, ["lint", "--db-url", db.url])
    assert result.exit_code == 0, result.output + result.stderr


def test_json_output_parses_and_fails_on_warnings(db: ScratchDb) -> None:
    apply_as_postgres(db, BAD_SCHEMA)
    result = runner.invoke(app, ["lint", "--db-url", db.url, "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    assert {f["name"] for f in findings} >= {name for name, _ in EXPECTED}
    for finding in findings:
        assert set(finding) == {"name", "title", "level", "facing", "categories",
                                "description", "detail", "remediation", "metadata",
                                "cache_key"}
        assert finding["level"] in ("ERROR", "WARN", "INFO")
        assert finding["facing"] == "EXTERNAL"
    assert "lint finding(s)" in result.stderr

    table = runner.invoke(app, ["lint", "--db-url", db.url])
    assert table.exit_code == 1
    assert "rls_disabled_in_public" in table.stdout


def test_only_info_findings_do_not_fail(db: ScratchDb) -> None:
    apply_as_postgres(db, "create table public.t (x int); alter table public.t enable "
                          "row level security;")
    results = lint(db.url)
    assert {r.name for r in results} == {"no_primary_key", "rls_enabled_no_policy"}
    assert runner.invoke(app, ["lint", "--db-url", db.url]).exit_code == 0


def test_extension_in_public(db: ScratchDb) -> None:
    available = db.query("select name from pg_available_extensions where name in "
                         "('pg_trgm', 'pgcrypto', 'citext') order by name")
    if not available:
        pytest.skip("no trusted contrib extension on this server")
    apply_as_postgres(db, f"create extension {available[0][0]} schema public")
    results = lint(db.url)
    assert ("extension_in_public", f"extension_in_public_{available[0][0]}") in keys(results)


def test_lint_names_are_splinters() -> None:
    codes = {spec.code[:4] for spec in LINTS}
    assert codes >= {"0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009",
                     "0010", "0011", "0013", "0014", "0015", "0024", "0028", "0029"}
    assert len({spec.name for spec in LINTS}) == len(LINTS)
    assert not [spec.name for spec in LINTS if "@" in _expand(spec.query)]


def test_cli_level_fail_on_and_schema_options(db: ScratchDb) -> None:
    apply_as_postgres(db, BAD_SCHEMA + """
        create schema private;
        create function private.helper() returns int language sql as $$ select 1 $$;
    """)
    base = ["lint", "--db-url", db.url, "--json"]

    def run(*args: str) -> tuple[int, list[dict[str, Any]]]:
        result = runner.invoke(app, [*base, *args])
        return result.exit_code, json.loads(result.stdout)

    code, every = run()
    levels = {f["level"] for f in every}
    assert code == 1 and levels == {"INFO", "WARN", "ERROR"}
    code, errors = run("--level", "error")
    assert code == 1 and errors == [f for f in every if f["level"] == "ERROR"]
    code, shown = run("--level", "WARNING", "--fail-on", "none")  # Supabase CLI spelling
    assert code == 0 and {f["level"] for f in shown} == {"WARN", "ERROR"}
    # --fail-on counts what --level hides, like `supabase db lint`.
    code, shown = run("--level", "error", "--fail-on", "warn")
    assert code == 1
    # --schema keeps findings about objects in those schemas.
    code, private = run("--schema", "private", "--fail-on", "error")
    assert code == 0
    assert {(f["name"], f["cache_key"].rsplit("_", 1)[0]) for f in private} == {
        ("function_search_path_mutable", "function_search_path_mutable_private_helper")}
    code, both = run("-s", "private,public")
    assert len(both) == len(every)
    assert runner.invoke(app, [*base, "--level", "loud"]).exit_code == 2


def test_cli_api_schema_option(db: ScratchDb) -> None:
    apply_as_postgres(db, """
        create schema api;
        grant usage on schema api to anon;
        create table api.open (id int primary key);
        grant select on api.open to anon;
    """)
    base = ["lint", "--db-url", db.url, "--json"]
    default = runner.invoke(app, base)
    assert default.exit_code == 0, default.output
    exposed = runner.invoke(app, [*base, "--api-schema", "public,api"])
    assert exposed.exit_code == 1
    assert "rls_disabled_in_public_api_open" in {f["cache_key"]
                                                 for f in json.loads(exposed.stdout)}


def test_table_output_links_each_lints_docs(db: ScratchDb) -> None:
    apply_as_postgres(db, "create table public.t (x int);")
    result = runner.invoke(app, ["lint", "--db-url", db.url])
    assert result.exit_code == 0, result.output
    assert "no_primary_key: https://supabase.com/docs/guides/database/database-linter" \
        "?lint=0004_no_primary_key" in result.stdout
    quiet = runner.invoke(app, ["lint", "--db-url", db.url, "--level", "warn"])
    assert "No lint findings (1 below --level)" in quiet.stderr

