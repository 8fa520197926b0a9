"""`rendio db lint` finds what Supabase's advisor (splinter) finds, lint for lint.

For every lint of splinter.sql: a fixture that must trigger it and a near miss that must
not. The expected findings below are splinter's own on the same fixtures: they were
established by running splinter.sql (github.com/supabase/splinter) in these very
transactions on PostgreSQL 15 and 18, in a database bootstrapped like a Supabase project,
and agree on both. splinter itself is not part of this repository. A finding is compared
as (name, level, cache_key), what a dashboard exclusion list matches on, and a fixture's
findings must be exactly splinter's, not just include the lint in question.

Each fixture runs as `postgres` (as migrations do on hosted Supabase) in one transaction
that is rolled back, so a single bootstrapped database serves them all. `reset role`
marks the few steps only a superuser may take: emulating pg_graphql (neither server has
it; splinter only asks pg_extension whether it is installed), faking a bloated table's
page count, and a foreign data wrapper.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from rendio_backend.dbtools.bootstrap import bootstrap
from rendio_backend.dbtools.connection import with_database
from rendio_backend.dbtools.lint import LINTS, LintResult, failing, lint, run_lints
from rendio_backend.dbtools.migrations import migrate
from tests.support.stack import MIGRATIONS, RunningStack, ScratchDb

Finding = tuple[str, str, str]  # name, level, cache_key
API = ("public", "graphql_public")

# What splinter looks at to decide that pg_graphql is installed: its pg_extension row.
# On hosted Supabase supabase_admin owns the extension and supautils lets postgres drop it;
# here postgres owns the stand-in row, which `drop extension` removes like the real one.
EMULATE_PG_GRAPHQL = """
create schema if not exists graphql;
insert into pg_catalog.pg_extension
  (oid, extname, extowner, extnamespace, extrelocatable, extversion)
select pg_catalog.pg_nextoid('pg_catalog.pg_extension', 'oid',
                            'pg_catalog.pg_extension_oid_index'),
       'pg_graphql', 'postgres'::regrole, 'graphql'::regnamespace, false, '1.5.11';
"""


@dataclass(frozen=True)
class Case:
    lint: str
    trigger: str
    near_miss: str
    expected: frozenset[Finding]  # splinter's findings on `trigger`
    near_expected: frozenset[Finding] = frozenset()  # and on `near_miss`
    api: tuple[str, ...] = API


def f(*findings: Finding) -> frozenset[Finding]:
    return frozenset(findings)


CASES = (
    Case(
        "unindexed_foreign_keys",
        # An index on the key's columns in another order does not cover it...
        """
        create table public.parent (a int, b int, primary key (a, b));
        create table public.child (id int primary key, a int, b int,
                                   foreign key (a, b) references public.parent);
        create index child_b_a on public.child (b, a);
        """,
        # ...a partial one leading with them in the key's order does.
        """
        create table public.parent (a int, b int, primary key (a, b));
        create table public.child (id int primary key, a int, b int,
                                   foreign key (a, b) references public.parent);
        create index child_a_b on public.child (a, b, id) where id > 0;
        """,
        f(
            ("unindexed_foreign_keys", "INFO",
             "unindexed_foreign_keys_public_child_child_a_b_fkey"),
            ("unused_index", "INFO", "unused_index_public_child_child_b_a"),
        ),
        f(
            ("unused_index", "INFO", "unused_index_public_child_child_a_b"),
        ),
    ),
    Case(
        "auth_users_exposed",
        """
        create view public.user_emails as select id, email from auth.users;
        grant select on public.user_emails to authenticated;
        """,
        # security_invoker, and auth.users has RLS: the caller's rights apply.
        """
        create view public.user_emails with (security_invoker = on) as
          select id, email from auth.users;
        grant select on public.user_emails to authenticated;
        """,
        f(
            ("auth_users_exposed", "ERROR", "auth_users_exposed_public_user_emails"),
            ("security_definer_view", "ERROR", "security_definer_view_public_user_emails"),
        ),
    ),
    Case(
        "auth_rls_initplan",
        # `(select auth.jwt() ->> …)` is not a wrapped call (it deparses as
        # `SELECT (auth.jwt() ->> …)`); realtime policies are linted.
        """
        create table public.notes (id int primary key, owner uuid, team text);
        alter table public.notes enable row level security;
        create policy bare on public.notes for select to authenticated
          using (owner = auth.uid());
        create policy inner_select on public.notes for update to authenticated
          using (team = (select auth.jwt() ->> 'team'));
        create policy setting on public.notes for delete to authenticated
          using (team = current_setting('app.team', true));
        create schema realtime;
        create table realtime.messages (id int primary key, topic text);
        alter table realtime.messages enable row level security;
        create policy topic on realtime.messages for select to authenticated
          using (topic = auth.role());
        """,
        # Wrapped calls; one wrapped call of a function clears a bare one in the same
        # expression; storage policies are not linted; no RLS, no lint.
        """
        create table public.notes (id int primary key, owner uuid, team text);
        alter table public.notes enable row level security;
        create policy wrapped on public.notes for select to authenticated
          using (owner = (select auth.uid()));
        create policy outer_select on public.notes for update to authenticated
          using (team = (select auth.jwt()) ->> 'team');
        create policy mixed on public.notes for delete to authenticated
          using (owner = (select auth.uid()) or owner = auth.uid());
        create policy setting on public.notes for insert to authenticated
          with check (team = (select current_setting('app.team', true)));
        create policy bare_storage on storage.objects for select to authenticated
          using (owner_id = auth.uid()::text);
        """,
        f(
            ("auth_rls_initplan", "WARN", "auth_rls_init_plan_public_notes_bare"),
            ("auth_rls_initplan", "WARN", "auth_rls_init_plan_public_notes_inner_select"),
            ("auth_rls_initplan", "WARN", "auth_rls_init_plan_public_notes_setting"),
            ("auth_rls_initplan", "WARN", "auth_rls_init_plan_realtime_messages_topic"),
        ),
    ),
    Case(
        "no_primary_key",
        "create table public.events (id int);",
        "create table public.events (id int primary key);",
        f(
            ("no_primary_key", "INFO", "no_primary_key_public_events"),
        ),
    ),
    Case(
        "unused_index",
        """
        create table public.items (id int primary key, sku text);
        create index items_sku on public.items (sku);
        """,
        # Unique indexes enforce something: never reported as unused.
        """
        create table public.items (id int primary key, sku text);
        create unique index items_sku on public.items (sku);
        """,
        f(
            ("unused_index", "INFO", "unused_index_public_items_items_sku"),
        ),
    ),
    Case(
        "multiple_permissive_policies",
        # FOR ALL counts for each action.
        """
        create table public.posts (id int primary key, owner uuid);
        alter table public.posts enable row level security;
        create policy own on public.posts for select to authenticated
          using (owner = (select auth.uid()));
        create policy everything on public.posts for all to authenticated
          using (owner = (select auth.uid()));
        """,
        """
        create table public.posts (id int primary key, owner uuid);
        alter table public.posts enable row level security;
        create policy own on public.posts for select to authenticated
          using (owner = (select auth.uid()));
        create policy not_banned on public.posts as restrictive for all to authenticated
          using (owner is not null);
        """,
        f(
            ("multiple_permissive_policies", "WARN",
             "multiple_permissive_policies_public_posts_authenticated_SELECT"),
        ),
    ),
    Case(
        "policy_exists_rls_disabled",
        """
        create table public.docs (id int primary key);
        create policy readers on public.docs for select to authenticated using (true);
        """,
        """
        create table public.docs (id int primary key);
        alter table public.docs enable row level security;
        create policy readers on public.docs for select to authenticated using (true);
        """,
        f(
            ("policy_exists_rls_disabled", "ERROR", "policy_exists_rls_disabled_public_docs"),
        ),
    ),
    Case(
        "rls_enabled_no_policy",
        """
        create table public.docs (id int primary key);
        alter table public.docs enable row level security;
        """,
        """
        create table public.docs (id int primary key);
        alter table public.docs enable row level security;
        create policy nobody on public.docs for select to authenticated using (false);
        """,
        f(
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_docs"),
        ),
    ),
    Case(
        "duplicate_index",
        """
        create table public.tags (id int primary key, label text);
        create index tags_label_a on public.tags (label);
        create index tags_label_b on public.tags (label);
        """,
        # Storage parameters are part of an index's definition.
        """
        create table public.tags (id int primary key, label text);
        create index tags_label_a on public.tags (label);
        create index tags_label_b on public.tags (label) with (fillfactor = 70);
        """,
        f(
            ("duplicate_index", "WARN", "duplicate_index_public_tags_{tags_label_a,tags_label_b}"),
            ("unused_index", "INFO", "unused_index_public_tags_tags_label_a"),
            ("unused_index", "INFO", "unused_index_public_tags_tags_label_b"),
        ),
        f(
            ("unused_index", "INFO", "unused_index_public_tags_tags_label_a"),
            ("unused_index", "INFO", "unused_index_public_tags_tags_label_b"),
        ),
    ),
    Case(
        "security_definer_view",
        """
        create table public.prices (id int primary key, cents int);
        alter table public.prices enable row level security;
        create view public.price_list as select id, cents from public.prices;
        grant select on public.price_list to anon;
        """,
        """
        create table public.prices (id int primary key, cents int);
        alter table public.prices enable row level security;
        create view public.price_list with (security_invoker = true) as
          select id, cents from public.prices;
        grant select on public.price_list to anon;
        """,
        f(
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_prices"),
            ("security_definer_view", "ERROR", "security_definer_view_public_price_list"),
        ),
        f(
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_prices"),
        ),
    ),
    Case(
        "function_search_path_mutable",
        # Aggregates count (they cannot even set a search_path).
        """
        create function public.add_one(x int) returns int language sql as $$ select x + 1 $$;
        create aggregate public.total(int) (sfunc = int4pl, stype = int);
        """,
        """
        create function public.add_one(x int) returns int language sql set search_path = ''
          as $$ select x + 1 $$;
        create aggregate extensions.total(int) (sfunc = int4pl, stype = int);
        """,
        f(
            ("function_search_path_mutable", "WARN",
             "function_search_path_mutable_public_add_one_4172e9fbebd21d50dece38a2664a9470"),
            ("function_search_path_mutable", "WARN",
             "function_search_path_mutable_public_total_3eb6d2f5e7ee95ed566dd6cdda54dac3"),
        ),
    ),
    Case(
        "rls_disabled_in_public",
        """
        create table public.open (id int primary key);
        grant select on public.open to anon;
        """,
        # The same table in a schema PostgREST does not serve.
        """
        create schema private;
        grant usage on schema private to anon;
        create table private.open (id int primary key);
        grant select on private.open to anon;
        """,
        f(
            ("rls_disabled_in_public", "ERROR", "rls_disabled_in_public_public_open"),
        ),
    ),
    Case(
        "extension_in_public",
        "create extension pg_trgm schema public;",
        "create extension pg_trgm schema extensions;",
        f(
            ("extension_in_public", "WARN", "extension_in_public_pg_trgm"),
        ),
    ),
    Case(
        "rls_references_user_metadata",
        """
        create table public.admin_notes (id int primary key);
        alter table public.admin_notes enable row level security;
        create policy by_jwt on public.admin_notes for select to authenticated
          using (((select auth.jwt()) -> 'user_metadata' ->> 'admin')::boolean);
        create policy by_claims on public.admin_notes for insert to authenticated
          with check ((current_setting('request.jwt.claims', true)::jsonb
                       -> 'user_metadata' ->> 'admin')::boolean);
        """,
        # app_metadata is not editable by users; storage policies are not linted.
        """
        create table public.admin_notes (id int primary key);
        alter table public.admin_notes enable row level security;
        create policy by_jwt on public.admin_notes for select to authenticated
          using (((select auth.jwt()) -> 'app_metadata' ->> 'admin')::boolean);
        create policy by_jwt on storage.objects for select to authenticated
          using (((select auth.jwt()) -> 'user_metadata' ->> 'admin')::boolean);
        """,
        f(
            ("auth_rls_initplan", "WARN", "auth_rls_init_plan_public_admin_notes_by_claims"),
            ("rls_references_user_metadata", "ERROR",
             "rls_references_user_metadata_public_admin_notes_by_claims"),
            ("rls_references_user_metadata", "ERROR",
             "rls_references_user_metadata_public_admin_notes_by_jwt"),
        ),
    ),
    Case(
        "materialized_view_in_api",
        """
        create materialized view public.stats as select 1 as one;
        grant select on public.stats to authenticated;
        """,
        "create materialized view public.stats as select 1 as one;",
        f(
            ("materialized_view_in_api", "WARN", "materialized_view_in_api_public_stats"),
        ),
    ),
    Case(
        "foreign_table_in_api",
        """
        reset role;
        create foreign data wrapper rendio_lint_fdw;
        grant usage on foreign data wrapper rendio_lint_fdw to postgres;
        set role postgres;
        create server remote foreign data wrapper rendio_lint_fdw;
        create foreign table public.remote_rows (id int) server remote;
        grant select on public.remote_rows to anon;
        """,
        """
        reset role;
        create foreign data wrapper rendio_lint_fdw;
        grant usage on foreign data wrapper rendio_lint_fdw to postgres;
        set role postgres;
        create server remote foreign data wrapper rendio_lint_fdw;
        create schema private;
        create foreign table private.remote_rows (id int) server remote;
        grant select on private.remote_rows to anon;
        """,
        f(
            ("foreign_table_in_api", "WARN", "foreign_table_in_api_public_remote_rows"),
        ),
    ),
    Case(
        "unsupported_reg_types",
        """
        create table public.hooks (id int primary key, fn regproc, ns regnamespace);
        """,
        """
        create table public.hooks (id int primary key, rel regclass, typ regtype,
                                   who regrole);
        """,
        f(
            ("unsupported_reg_types", "WARN", "unsupported_reg_types_public_hooks_fn"),
            ("unsupported_reg_types", "WARN", "unsupported_reg_types_public_hooks_ns"),
        ),
    ),
    Case(
        "insecure_queue_exposed_in_api",
        """
        create schema pgmq;
        grant usage on schema pgmq to anon;
        create table pgmq.q_jobs (id int primary key);
        grant select on pgmq.q_jobs to anon;
        """,
        """
        create schema pgmq;
        grant usage on schema pgmq to anon;
        create table pgmq.q_jobs (id int primary key);
        alter table pgmq.q_jobs enable row level security;
        grant select on pgmq.q_jobs to anon;
        """,
        f(
            ("insecure_queue_exposed_in_api", "ERROR", "rls_disabled_in_public_pgmq_q_jobs"),
        ),
        api=(*API, "pgmq_public"),
    ),
    Case(
        "table_bloat",
        # Statistics of 100 rows (one page's worth) against a page count faked to 5000:
        # over 70x and 20 MB wasted. Autovacuum must not correct the fake meanwhile.
        """
        create table public.churn (id int primary key) with (autovacuum_enabled = false);
        insert into public.churn select generate_series(1, 100);
        analyze public.churn;
        reset role;
        update pg_catalog.pg_class set relpages = 5000 where oid = 'public.churn'::regclass;
        set role postgres;
        """,
        # Bloated just as badly, but only 2000 pages: under 20 MB of waste.
        """
        create table public.churn (id int primary key) with (autovacuum_enabled = false);
        insert into public.churn select generate_series(1, 100);
        analyze public.churn;
        reset role;
        update pg_catalog.pg_class set relpages = 2000 where oid = 'public.churn'::regclass;
        set role postgres;
        """,
        f(
            ("table_bloat", "INFO", "table_bloat_public_churn"),
        ),
    ),
    Case(
        "fkey_to_auth_unique",
        """
        create table public.contacts (id int primary key,
                                      phone text references auth.users (phone));
        create index on public.contacts (phone);
        """,
        """
        create table public.contacts (id int primary key,
                                      user_id uuid references auth.users (id));
        create index on public.contacts (user_id);
        """,
        f(
            ("fkey_to_auth_unique", "ERROR",
             "fkey_to_auth_unique_public_contacts_contacts_phone_fkey"),
            ("unused_index", "INFO", "unused_index_public_contacts_contacts_phone_idx"),
        ),
        f(
            ("unused_index", "INFO", "unused_index_public_contacts_contacts_user_id_idx"),
        ),
    ),
    Case(
        "extension_versions_outdated",
        "create extension pg_trgm schema extensions version '1.3';",
        # A version the server no longer ships (what pg_upgrade can leave behind).
        """
        create extension pg_trgm schema extensions version '1.3';
        reset role;
        update pg_catalog.pg_extension set extversion = 'gone' where extname = 'pg_trgm';
        set role postgres;
        """,
        f(
            ("extension_versions_outdated", "WARN", "extension_versions_outdated_pg_trgm_1.3"),
        ),
    ),
    Case(
        "sensitive_columns_exposed",
        # Matched case-insensitively, `-` read as `_`.
        """
        create table public.accounts (id int primary key, "Api-Key" text, password text,
                                      nickname text);
        grant select on public.accounts to anon;
        """,
        """
        create table public.accounts (id int primary key, "Api-Key" text, password text,
                                      nickname text);
        alter table public.accounts enable row level security;
        create policy own on public.accounts for select to anon using (false);
        grant select on public.accounts to anon;
        """,
        f(
            ("rls_disabled_in_public", "ERROR", "rls_disabled_in_public_public_accounts"),
            ("sensitive_columns_exposed", "ERROR", "sensitive_columns_exposed_public_accounts"),
        ),
    ),
    Case(
        "rls_policy_always_true",
        # PUBLIC policies count (and are listed as `-`, as regrole prints PUBLIC).
        """
        create table public.wall (id int primary key, owner uuid);
        alter table public.wall enable row level security;
        create policy edit_any on public.wall for update to authenticated using (true);
        create policy add_any on public.wall for insert to anon with check (1 = 1);
        create policy drop_any on public.wall for delete using (  TRUE  );
        """,
        # Reading everything is allowed on purpose; other roles, restrictive policies and
        # storage policies are not this lint's business.
        """
        create table public.wall (id int primary key, owner uuid);
        alter table public.wall enable row level security;
        create policy read_all on public.wall for select to authenticated using (true);
        create policy service on public.wall for update to service_role using (true);
        create policy fence on public.wall as restrictive for delete to anon using (true);
        create policy edit_own on public.wall for update to authenticated
          using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
        create policy upload_any on storage.objects for insert to authenticated
          with check (true);
        """,
        f(
            ("rls_policy_always_true", "WARN", "rls_policy_always_true_public_wall_add_any"),
            ("rls_policy_always_true", "WARN", "rls_policy_always_true_public_wall_drop_any"),
            ("rls_policy_always_true", "WARN", "rls_policy_always_true_public_wall_edit_any"),
        ),
    ),
    Case(
        "public_bucket_allows_listing",
        # The bucket id is matched literally: quotes, backslashes and case as written.
        """
        insert into storage.buckets (id, name, public)
          values ('Avatars', 'Avatars', true), ('it''s\\public', 'odd', true);
        create policy list_avatars on storage.objects for select to public
          using (bucket_id = 'Avatars');
        create policy list_odd on storage.objects for select to anon
          using ((bucket_id = 'it''s\\public'::text));
        """,
        # Another case of the id; a private bucket; a policy narrower than the bucket.
        """
        insert into storage.buckets (id, name, public)
          values ('Avatars', 'Avatars', true), ('secret', 'secret', false);
        create policy list_avatars on storage.objects for select to public
          using (bucket_id = 'avatars');
        create policy list_secret on storage.objects for select to anon
          using (bucket_id = 'secret');
        create policy own_folder on storage.objects for select to authenticated
          using (bucket_id = 'Avatars' and name like 'public/%');
        """,
        f(
            ("public_bucket_allows_listing", "WARN", "public_bucket_allows_listing_Avatars"),
            ("public_bucket_allows_listing", "WARN", "public_bucket_allows_listing_it's\\public"),
        ),
    ),
    Case(
        "pg_graphql_anon_table_exposed",
        # One selectable column is enough for pg_graphql to expose the table.
        """
        reset role;
        """ + EMULATE_PG_GRAPHQL + """
        set role postgres;
        create table public.catalog (id int primary key, cost int);
        alter table public.catalog enable row level security;
        grant select (id) on public.catalog to anon;
        """,
        """
        reset role;
        """ + EMULATE_PG_GRAPHQL + """
        set role postgres;
        create table public.catalog (id int primary key, cost int);
        alter table public.catalog enable row level security;
        grant select on public.catalog to authenticated;
        """,
        f(
            ("pg_graphql_anon_table_exposed", "WARN",
             "pg_graphql_anon_table_exposed_public_catalog"),
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_catalog"),
        ),
        f(
            ("pg_graphql_authenticated_table_exposed", "WARN",
             "pg_graphql_authenticated_table_exposed_public_catalog"),
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_catalog"),
        ),
    ),
    Case(
        "pg_graphql_authenticated_table_exposed",
        """
        reset role;
        """ + EMULATE_PG_GRAPHQL + """
        set role postgres;
        create table public.catalog (id int primary key, cost int);
        alter table public.catalog enable row level security;
        create view public.catalog_ids with (security_invoker = on) as
          select id from public.catalog;
        grant select on public.catalog, public.catalog_ids to authenticated;
        """,
        # The same grants without pg_graphql: no GraphQL schema to be visible in.
        """
        create table public.catalog (id int primary key, cost int);
        alter table public.catalog enable row level security;
        create view public.catalog_ids with (security_invoker = on) as
          select id from public.catalog;
        grant select on public.catalog, public.catalog_ids to authenticated;
        """,
        f(
            ("pg_graphql_authenticated_table_exposed", "WARN",
             "pg_graphql_authenticated_table_exposed_public_catalog"),
            ("pg_graphql_authenticated_table_exposed", "WARN",
             "pg_graphql_authenticated_table_exposed_public_catalog_ids"),
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_catalog"),
        ),
        f(
            ("rls_enabled_no_policy", "INFO", "rls_enabled_no_policy_public_catalog"),
        ),
    ),
    Case(
        "anon_security_definer_function_executable",
        # PostgreSQL grants EXECUTE to PUBLIC unless revoked: anon may call it.
        """
        create function public.bump() returns void language sql security definer
          set search_path = '' as $$ select $$;
        """,
        """
        create function public.bump() returns void language sql security definer
          set search_path = '' as $$ select $$;
        revoke execute on function public.bump() from public;
        grant execute on function public.bump() to authenticated;
        """,
        f(
            ("anon_security_definer_function_executable", "WARN",
             "anon_security_definer_function_executable_public_bump_"),
            ("authenticated_security_definer_function_executable", "WARN",
             "authenticated_security_definer_function_executable_public_bump_"),
        ),
        f(
            ("authenticated_security_definer_function_executable", "WARN",
             "authenticated_security_definer_function_executable_public_bump_"),
        ),
    ),
    Case(
        "authenticated_security_definer_function_executable",
        """
        create function public.bump(n int) returns void language sql security definer
          set search_path = '' as $$ select $$;
        revoke execute on function public.bump(int) from public;
        grant execute on function public.bump(int) to authenticated;
        """,
        # Not in an exposed schema, or not callable by signed-in users.
        """
        create schema private;
        create function private.bump(n int) returns void language sql security definer
          set search_path = '' as $$ select $$;
        grant usage on schema private to authenticated;
        grant execute on function private.bump(int) to authenticated;
        create function public.bump(n int) returns void language sql security definer
          set search_path = '' as $$ select $$;
        revoke execute on function public.bump(int) from public;
        grant execute on function public.bump(int) to service_role;
        """,
        f(
            ("authenticated_security_definer_function_executable", "WARN",
             "authenticated_security_definer_function_executable_public_bump_n integer"),
        ),
    ),
)

# splinter.sql's fixed columns for every lint: name → (level, categories, remediation).
DOCS = "https://supabase.com/docs/guides/database/database-linter?lint="
SPLINTER = {
    "unindexed_foreign_keys": ("INFO", ["PERFORMANCE"], DOCS + "0001_unindexed_foreign_keys"),
    "auth_users_exposed": ("ERROR", ["SECURITY"], DOCS + "0002_auth_users_exposed"),
    "auth_rls_initplan": ("WARN", ["PERFORMANCE"], DOCS + "0003_auth_rls_initplan"),
    "no_primary_key": ("INFO", ["PERFORMANCE"], DOCS + "0004_no_primary_key"),
    "unused_index": ("INFO", ["PERFORMANCE"], DOCS + "0005_unused_index"),
    "multiple_permissive_policies": ("WARN", ["PERFORMANCE"],
                                     DOCS + "0006_multiple_permissive_policies"),
    "policy_exists_rls_disabled": ("ERROR", ["SECURITY"],
                                   DOCS + "0007_policy_exists_rls_disabled"),
    "rls_enabled_no_policy": ("INFO", ["SECURITY"], DOCS + "0008_rls_enabled_no_policy"),
    "duplicate_index": ("WARN", ["PERFORMANCE"], DOCS + "0009_duplicate_index"),
    "security_definer_view": ("ERROR", ["SECURITY"], DOCS + "0010_security_definer_view"),
    "function_search_path_mutable": ("WARN", ["SECURITY"],
                                     DOCS + "0011_function_search_path_mutable"),
    "rls_disabled_in_public": ("ERROR", ["SECURITY"], DOCS + "0013_rls_disabled_in_public"),
    "extension_in_public": ("WARN", ["SECURITY"], DOCS + "0014_extension_in_public"),
    "rls_references_user_metadata": ("ERROR", ["SECURITY"],
                                     DOCS + "0015_rls_references_user_metadata"),
    "materialized_view_in_api": ("WARN", ["SECURITY"], DOCS + "0016_materialized_view_in_api"),
    "foreign_table_in_api": ("WARN", ["SECURITY"], DOCS + "0017_foreign_table_in_api"),
    "unsupported_reg_types": ("WARN", ["SECURITY"], DOCS + "unsupported_reg_types"),
    "insecure_queue_exposed_in_api": ("ERROR", ["SECURITY"],
                                      DOCS + "0019_insecure_queue_exposed_in_api"),
    "table_bloat": ("INFO", ["PERFORMANCE"],
                    "Consider running vacuum full (WARNING: incurs downtime) and tweaking "
                    "autovacuum settings to reduce bloat."),
    "fkey_to_auth_unique": ("ERROR", ["SECURITY"],
                            "Drop the foreign key constraint that references the auth schema."),
    "extension_versions_outdated": ("WARN", ["SECURITY"],
                                    DOCS + "0022_extension_versions_outdated"),
    "sensitive_columns_exposed": ("ERROR", ["SECURITY"],
                                  DOCS + "0023_sensitive_columns_exposed"),
    "rls_policy_always_true": ("WARN", ["SECURITY"], DOCS + "0024_permissive_rls_policy"),
    "public_bucket_allows_listing": ("WARN", ["SECURITY"],
                                     DOCS + "0025_public_bucket_allows_listing"),
    "pg_graphql_anon_table_exposed": ("WARN", ["SECURITY"],
                                      DOCS + "0026_pg_graphql_anon_table_exposed"),
    "pg_graphql_authenticated_table_exposed": (
        "WARN", ["SECURITY"], DOCS + "0027_pg_graphql_authenticated_table_exposed"),
    "anon_security_definer_function_executable": (
        "WARN", ["SECURITY"], DOCS + "0028_anon_security_definer_function_executable"),
    "authenticated_security_definer_function_executable": (
        "WARN", ["SECURITY"],
        DOCS + "0029_authenticated_security_definer_function_executable"),
}


@dataclass(frozen=True)
class LintDb:
    superuser_url: str


@pytest.fixture(scope="module")
def lint_db(stack: RunningStack) -> Iterator[LintDb]:
    """One bootstrapped database for the module; every fixture is rolled back."""
    name = f"rendio_lint_{secrets.token_hex(4)}"
    superuser = stack.config.superuser_db_url
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(pgsql.SQL("create database {}").format(pgsql.Identifier(name)))
    url = with_database(superuser, name)
    bootstrap(url)
    try:
        yield LintDb(url)
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(pgsql.SQL("drop database if exists {} with (force)").format(
                pgsql.Identifier(name)))


def lint_fixture(db: LintDb, fixture: str, api: tuple[str, ...] = API) -> list[LintResult]:
    """Apply `fixture` as postgres and lint, as postgres, in one rolled-back transaction."""
    with psycopg.connect(db.superuser_url) as conn:
        try:
            conn.execute("set role postgres")
            conn.execute(fixture.encode())
            conn.execute("set role postgres")
            return run_lints(conn, api_schemas=api)
        finally:
            conn.rollback()


def keys(results: list[LintResult]) -> set[Finding]:
    return {(r.name, r.level, r.cache_key) for r in results}


def test_every_splinter_lint_is_here_with_splinters_fields() -> None:
    assert [spec.name for spec in LINTS] == list(SPLINTER)
    for spec in LINTS:
        assert (spec.level, list(spec.categories), spec.remediation) == SPLINTER[spec.name]
    assert sorted(case.lint for case in CASES) == sorted(SPLINTER)


@pytest.mark.parametrize("case", CASES, ids=[case.lint for case in CASES])
def test_fixture_triggers_the_lint_as_in_splinter(lint_db: LintDb, case: Case) -> None:
    results = lint_fixture(lint_db, case.trigger, case.api)
    assert case.lint in {name for name, _, _ in case.expected}
    assert keys(results) == case.expected
    for result in results:
        level, categories, remediation = SPLINTER[result.name]
        assert (result.level, result.facing, result.categories, result.remediation) \
            == (level, "EXTERNAL", categories, remediation)
        assert result.cache_key.startswith(
            "rls_disabled_in_public_" if result.name == "insecure_queue_exposed_in_api"
            else {"auth_rls_initplan": "auth_rls_init_plan_"}.get(result.name,
                                                                   result.name + "_"))


@pytest.mark.parametrize("case", CASES, ids=[case.lint for case in CASES])
def test_near_miss_stays_silent_as_in_splinter(lint_db: LintDb, case: Case) -> None:
    results = lint_fixture(lint_db, case.near_miss, case.api)
    assert case.lint not in {r.name for r in results}
    assert keys(results) == case.near_expected


def test_policies_for_public_count_for_the_roles_splinter_counts(lint_db: LintDb) -> None:
    results = lint_fixture(lint_db, """
        create table public.board (id int primary key);
        alter table public.board enable row level security;
        create policy a on public.board for select using (true);
        create policy b on public.board for select using (id > 0);
    """)
    prefix, suffix = "multiple_permissive_policies_public_board_", "_SELECT"
    roles = {r.cache_key.removeprefix(prefix).removesuffix(suffix) for r in results
             if r.name == "multiple_permissive_policies"}
    # splinter's findings on a freshly bootstrapped cluster (a shared server may have more).
    assert roles >= {"anon", "authenticated", "authenticator", "dashboard_user",
                     "supabase_superuser"}
    # Skipped: 'pg_%' as a LIKE pattern (so pgbouncer too), 'supabase%admin', BYPASSRLS.
    assert not roles & {"pgbouncer", "pg_read_all_data", "pg_monitor", "postgres",
                        "service_role", "supabase_admin", "supabase_auth_admin",
                        "supabase_storage_admin", "supabase_replication_admin",
                        "supabase_read_only_user"}


# --- acceptance: the project's own schema, with and without pg_graphql --------------------

DROP_PG_GRAPHQL = next(MIGRATIONS.glob("*_drop_pg_graphql.sql"))


@pytest.mark.parametrize("graphql", [False, True], ids=["plain", "pg_graphql"])
def test_project_schema_has_no_warn_or_error(db: ScratchDb, graphql: bool) -> None:
    if graphql:  # as on every hosted project, before the migrations run
        db.query(EMULATE_PG_GRAPHQL)
    migrate(db.url, MIGRATIONS)  # as postgres, as on hosted Supabase
    assert db.query("select extname from pg_extension where extname = 'pg_graphql'") == []
    bad = failing(lint(db.url))
    assert bad == [], [f"{r.level} {r.name}: {r.detail}" for r in bad]


def test_with_pg_graphql_kept_the_advisor_would_warn(db: ScratchDb, tmp_path: Path) -> None:
    # Why the migration: every table signed-in users read shows in the GraphQL schema.
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path != DROP_PG_GRAPHQL:
            shutil.copy(path, migrations)
    db.query(EMULATE_PG_GRAPHQL)
    migrate(db.url, migrations)
    exposed = {r.metadata["name"] for r in lint(db.url)
               if r.name == "pg_graphql_authenticated_table_exposed"}
    assert exposed >= {"users", "video_jobs", "models", "quota_log"}

