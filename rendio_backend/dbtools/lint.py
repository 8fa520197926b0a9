"""Security and performance lints in the manner of Supabase's database advisor (splinter).

Each lint is our own catalog query; results have splinter's interface (name, title, level,
facing, categories, description, detail, remediation, metadata, cache_key) and splinter's
names, levels and remediation links, so a finding here reads like the one the hosted
dashboard's advisor would show.

Scope, as in splinter: objects in schemas that Supabase owns (auth, storage, extensions,
realtime, …) are ignored — we do not control them — except that the RLS policies we write
on `storage` tables are checked by the policy lints (initplan, user_metadata, always-true,
public bucket listing). "Exposed" means in a schema PostgREST serves (`api_schemas`,
default `public` and `graphql_public`, like `supabase/config.toml`); hosted Supabase reads
it from `pgrst.db_schemas`, which wins when the session has it set.

Deliberate differences from splinter (both make findings more precise, never fewer real
ones): an FK counts as indexed when a non-partial index leads with its columns in any
order; duplicate indexes are compared structurally (columns, operator classes,
expressions, predicate, uniqueness) instead of by their text; aggregates are not flagged
for a mutable search_path (they cannot set one); the initplan lint flags any unwrapped call
even when another call in the same policy is wrapped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import psycopg

from .connection import connect

__all__ = ["LINTS", "Level", "Lint", "LintResult", "failing", "lint", "run_lints"]

Level = Literal["ERROR", "WARN", "INFO"]

# Schemas owned by Supabase or its extensions (splinter's list): never linted.
SUPABASE_SCHEMAS = (
    "_timescaledb_cache", "_timescaledb_catalog", "_timescaledb_config",
    "_timescaledb_internal", "auth", "cron", "extensions", "graphql", "graphql_public",
    "information_schema", "net", "pgmq", "pgroonga", "pgsodium", "pgsodium_masks", "pgtle",
    "pgbouncer", "pg_catalog", "realtime", "repack", "storage", "supabase_functions",
    "supabase_migrations", "tiger", "topology", "vault", "pg_toast",
)
DEFAULT_API_SCHEMAS = ("public", "graphql_public")
_DOCS = "https://supabase.com/docs/guides/database/database-linter?lint="

# Shorthands of the lint queries. The schema lists are session settings made by run_lints,
# so the queries carry no client-side placeholders and a `%` in them stays literal.
_LISTS = {
    "@policy_owned": "pg_catalog.current_setting('rendio_lint.policy_owned')::text[]",
    "@owned": "pg_catalog.current_setting('rendio_lint.owned')::text[]",
    "@api": "pg_catalog.current_setting('rendio_lint.api')::text[]",
}
_FUNCS = {
    # @exposed(rel): anon or authenticated may select from the relation
    "exposed": "(pg_catalog.has_table_privilege('anon', {x}, 'SELECT') "
               "or pg_catalog.has_table_privilege('authenticated', {x}, 'SELECT'))",
    # @invoker(reloptions): the view is declared security_invoker
    "invoker": "(coalesce(pg_catalog.lower({x}::text), '{{}}')::text[] && array["
               "'security_invoker=1', 'security_invoker=true', 'security_invoker=yes', "
               "'security_invoker=on'])",
    # @not_ext(oid): the object does not belong to an extension
    "not_ext": "not exists (select 1 from pg_catalog.pg_depend ext "
               "where ext.deptype = 'e' and ext.objid = {x})",
}
_FUNC_RE = re.compile(r"@(exposed|invoker|not_ext)\(([\w.]+)\)")


def _expand(sql: str) -> str:
    """Expand the shorthands above in a lint query."""
    sql = _FUNC_RE.sub(lambda m: _FUNCS[m[1]].format(x=m[2]), sql)
    for token, fragment in _LISTS.items():
        sql = sql.replace(token, fragment)
    return sql


@dataclass(frozen=True)
class Lint:
    """One lint: splinter's fixed fields plus a query yielding (detail, metadata, cache_key)."""

    name: str
    code: str
    title: str
    level: Level
    categories: tuple[str, ...]
    description: str
    query: str = field(repr=False)
    needs: tuple[str, ...] = ()  # relations that must exist, e.g. storage.buckets

    @property
    def remediation(self) -> str:
        return _DOCS + self.code


@dataclass(frozen=True)
class LintResult:
    """One finding, in splinter's shape."""

    name: str
    title: str
    level: Level
    facing: str
    categories: list[str]
    description: str
    detail: str
    remediation: str
    metadata: dict[str, Any]
    cache_key: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_POLICY_EXPRS = """
    cross join lateral (select pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
                               pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check) e
"""
_CMD = """case p.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE'
            when 'd' then 'DELETE' else 'ALL' end"""

LINTS: tuple[Lint, ...] = (
    Lint(
        "unindexed_foreign_keys", "0001_unindexed_foreign_keys", "Unindexed foreign keys",
        "INFO", ("PERFORMANCE",),
        "Identifies foreign key constraints without a covering index, which can impact "
        "database performance.",
        """
        select pg_catalog.format('Table `%s.%s` has a foreign key `%s` without a covering '
                   'index. This can lead to suboptimal query performance.',
                   n.nspname, c.relname, con.conname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table', 'fkey_name', con.conname, 'fkey_columns', con.conkey),
               pg_catalog.format('unindexed_foreign_keys_%s_%s_%s', n.nspname, c.relname,
                   con.conname)
        from pg_catalog.pg_constraint con
        join pg_catalog.pg_class c on c.oid = con.conrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where con.contype = 'f' and n.nspname <> all(@owned) and @not_ext(c.oid)
          and not exists (
            select 1 from pg_catalog.pg_index i
            where i.indrelid = c.oid and i.indisvalid and i.indpred is null
              and (select pg_catalog.array_agg(k order by k) from pg_catalog.unnest(
                     (pg_catalog.string_to_array(i.indkey::text, ' ')::int2[])
                     [1:pg_catalog.cardinality(con.conkey)]) k)
                = (select pg_catalog.array_agg(k order by k) from pg_catalog.unnest(con.conkey) k))
        order by 3
        """,
    ),
    Lint(
        "auth_users_exposed", "0002_auth_users_exposed", "Exposed Auth Users", "ERROR",
        ("SECURITY",),
        "Detects if auth.users is exposed to anon or authenticated roles via a view or "
        "materialized view in schemas exposed to PostgREST, potentially compromising user "
        "data security.",
        """
        select pg_catalog.format('View/Materialized View "%s" in the public schema may expose '
                   '`auth.users` data to anon or authenticated roles.', c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'view', 'exposed_to', pg_catalog.array_remove(array[
                     case when pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
                          then 'anon' end,
                     case when pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT')
                          then 'authenticated' end], null)),
               pg_catalog.format('auth_users_exposed_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        cross join (select oid, relrowsecurity from pg_catalog.pg_class
                    where oid = pg_catalog.to_regclass('auth.users')) au
        where c.relkind in ('v', 'm') and n.nspname = any(@api) and @exposed(c.oid)
          and exists (
            select 1 from pg_catalog.pg_rewrite r
            join pg_catalog.pg_depend d on d.objid = r.oid
                 and d.classid = 'pg_catalog.pg_rewrite'::regclass
            where r.ev_class = c.oid and d.refobjid = au.oid and d.deptype = 'n')
          and (c.relkind = 'm' or not @invoker(c.reloptions) or not au.relrowsecurity)
        order by 3
        """,
        needs=("auth.users",),
    ),
    Lint(
        "auth_rls_initplan", "0003_auth_rls_initplan", "Auth RLS Initialization Plan", "WARN",
        ("PERFORMANCE",),
        "Detects if calls to `current_setting()` and `auth.<function>()` in RLS policies are "
        "being unnecessarily re-evaluated for each row",
        f"""
        select pg_catalog.format('Table `%s.%s` has a row level security policy `%s` that '
                   're-evaluates current_setting() or auth.<function>() for each row. This '
                   'produces suboptimal query performance at scale. Resolve the issue by '
                   'replacing `auth.<function>()` with `(select auth.<function>())`. See '
                   '[docs](https://supabase.com/docs/guides/database/postgres/'
                   'row-level-security#call-functions-with-select) for more info.',
                   n.nspname, c.relname, p.polname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('auth_rls_init_plan_%s_%s_%s', n.nspname, c.relname, p.polname)
        from pg_catalog.pg_policy p
        join pg_catalog.pg_class c on c.oid = p.polrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        {_POLICY_EXPRS}
        cross join (select '(?<!select )(?<!select \\()'
                           '(\\mauth\\.(uid|jwt|role|email)\\(\\)|\\mcurrent_setting\\()'
                           as re) x
        where c.relrowsecurity and n.nspname <> all(@policy_owned)
          and (e.qual ~* x.re or e.with_check ~* x.re)
        order by 3
        """,
    ),
    Lint(
        "no_primary_key", "0004_no_primary_key", "No Primary Key", "INFO", ("PERFORMANCE",),
        "Detects if a table does not have a primary key. Tables without a primary key can be "
        "inefficient to interact with at scale.",
        """
        select pg_catalog.format('Table `%s.%s` does not have a primary key', n.nspname,
                   c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('no_primary_key_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and n.nspname <> all(@owned) and @not_ext(c.oid)
          and not exists (select 1 from pg_catalog.pg_index i
                          where i.indrelid = c.oid and i.indisprimary)
        order by 3
        """,
    ),
    Lint(
        "unused_index", "0005_unused_index", "Unused Index", "INFO", ("PERFORMANCE",),
        "Detects if an index has never been used and may be a candidate for removal.",
        """
        select pg_catalog.format('Index `%s` on table `%s.%s` has not been used',
                   s.indexrelname, s.schemaname, s.relname),
               pg_catalog.jsonb_build_object('schema', s.schemaname, 'name', s.relname,
                   'type', 'table'),
               pg_catalog.format('unused_index_%s_%s_%s', s.schemaname, s.relname,
                   s.indexrelname)
        from pg_catalog.pg_stat_user_indexes s
        join pg_catalog.pg_index i on i.indexrelid = s.indexrelid
        where s.idx_scan = 0 and not i.indisunique and not i.indisprimary
          and s.schemaname <> all(@owned) and @not_ext(s.relid)
        order by 3
        """,
    ),
    Lint(
        "multiple_permissive_policies", "0006_multiple_permissive_policies",
        "Multiple Permissive Policies", "WARN", ("PERFORMANCE",),
        "Detects if multiple permissive row level security policies are present on a table "
        "for the same `role` and `action` (e.g. insert). Multiple permissive policies are "
        "suboptimal for performance as each policy must be executed for every relevant query.",
        f"""
        select pg_catalog.format('Table `%s.%s` has multiple permissive policies for role `%s` '
                   'for action `%s`. Policies include `%s`', n.nspname, c.relname, r.rolname,
                   a.cmd, pg_catalog.array_agg(p.polname order by p.polname)),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('multiple_permissive_policies_%s_%s_%s_%s', n.nspname,
                   c.relname, r.rolname, a.cmd)
        from pg_catalog.pg_policy p
        join pg_catalog.pg_class c on c.oid = p.polrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_roles r on r.oid = any(p.polroles) or p.polroles = '{{0}}'::oid[]
        cross join lateral pg_catalog.unnest(case {_CMD}
            when 'ALL' then array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
            else array[{_CMD}] end) a(cmd)
        where c.relkind = 'r' and p.polpermissive and n.nspname <> all(@owned)
          and r.rolname !~ '^pg_' and r.rolname !~ '^supabase.*admin$' and not r.rolbypassrls
          and @not_ext(c.oid)
        group by n.nspname, c.relname, r.rolname, a.cmd
        having pg_catalog.count(*) > 1
        order by 3
        """,
    ),
    Lint(
        "policy_exists_rls_disabled", "0007_policy_exists_rls_disabled",
        "Policy Exists RLS Disabled", "ERROR", ("SECURITY",),
        "Detects cases where row level security (RLS) policies have been created, but RLS "
        "has not been enabled for the underlying table.",
        """
        select pg_catalog.format('Table `%s.%s` has RLS policies but RLS is not enabled on the '
                   'table. Policies include %s.', n.nspname, c.relname,
                   pg_catalog.array_agg(p.polname order by p.polname)),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('policy_exists_rls_disabled_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_policy p
        join pg_catalog.pg_class c on c.oid = p.polrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and not c.relrowsecurity and n.nspname <> all(@owned)
          and @not_ext(c.oid)
        group by n.nspname, c.relname
        order by 3
        """,
    ),
    Lint(
        "rls_enabled_no_policy", "0008_rls_enabled_no_policy", "RLS Enabled No Policy", "INFO",
        ("SECURITY",),
        "Detects cases where row level security (RLS) has been enabled on a table but no RLS "
        "policies have been created.",
        """
        select pg_catalog.format('Table `%s.%s` has RLS enabled, but no policies exist',
                   n.nspname, c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('rls_enabled_no_policy_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and c.relrowsecurity and n.nspname <> all(@owned)
          and @not_ext(c.oid)
          and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)
        order by 3
        """,
    ),
    Lint(
        "duplicate_index", "0009_duplicate_index", "Duplicate Index", "WARN", ("PERFORMANCE",),
        "Detects cases where two ore more identical indexes exist.",
        """
        select pg_catalog.format('Table `%s.%s` has identical indexes %s. Drop all except one '
                   'of them', n.nspname, c.relname,
                   pg_catalog.array_agg(ic.relname order by ic.relname)),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', case c.relkind when 'r' then 'table' else 'materialized view' end,
                   'indexes', pg_catalog.array_agg(ic.relname order by ic.relname)),
               pg_catalog.format('duplicate_index_%s_%s_%s', n.nspname, c.relname,
                   pg_catalog.array_agg(ic.relname order by ic.relname))
        from pg_catalog.pg_index i
        join pg_catalog.pg_class ic on ic.oid = i.indexrelid
        join pg_catalog.pg_class c on c.oid = i.indrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'm') and n.nspname <> all(@owned) and @not_ext(c.oid)
        group by n.nspname, c.relname, c.relkind, i.indrelid, ic.relam, i.indkey::text,
                 i.indclass::text, i.indcollation::text, i.indoption::text, i.indisunique,
                 pg_catalog.to_jsonb(i) -> 'indnullsnotdistinct',
                 pg_catalog.pg_get_expr(i.indexprs, i.indrelid),
                 pg_catalog.pg_get_expr(i.indpred, i.indrelid)
        having pg_catalog.count(*) > 1
        order by 3
        """,
    ),
    Lint(
        "security_definer_view", "0010_security_definer_view", "Security Definer View", "ERROR",
        ("SECURITY",),
        "Detects views defined with the SECURITY DEFINER property. These views enforce "
        "Postgres permissions and row level security policies (RLS) of the view creator, "
        "rather than that of the querying user",
        """
        select pg_catalog.format('View `%s.%s` is defined with the SECURITY DEFINER property',
                   n.nspname, c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'view'),
               pg_catalog.format('security_definer_view_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'v' and @exposed(c.oid) and n.nspname = any(@api)
          and n.nspname <> all(@owned) and @not_ext(c.oid) and not @invoker(c.reloptions)
          and pg_catalog.current_setting('server_version_num')::int >= 150000
        order by 3
        """,
    ),
    Lint(
        "function_search_path_mutable", "0011_function_search_path_mutable",
        "Function Search Path Mutable", "WARN", ("SECURITY",),
        "Detects functions where the search_path parameter is not set.",
        """
        select pg_catalog.format('Function `%s.%s` has a role mutable search_path', n.nspname,
                   p.proname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', p.proname,
                   'type', 'function'),
               pg_catalog.format('function_search_path_mutable_%s_%s_%s', n.nspname, p.proname,
                   pg_catalog.md5(p.prosrc))
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname <> all(@owned) and p.prokind <> 'a' and @not_ext(p.oid)
          and not exists (select 1 from pg_catalog.unnest(p.proconfig) cfg
                          where cfg like 'search\\_path=%')
        order by 3
        """,
    ),
    Lint(
        "rls_disabled_in_public", "0013_rls_disabled_in_public", "RLS Disabled in Public",
        "ERROR", ("SECURITY",),
        "Detects cases where row level security (RLS) has not been enabled on tables in "
        "schemas exposed to PostgREST",
        """
        select pg_catalog.format('Table `%s.%s` is public, but RLS has not been enabled.',
                   n.nspname, c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('rls_disabled_in_public_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and not c.relrowsecurity and @exposed(c.oid)
          and n.nspname = any(@api) and n.nspname <> all(@owned)
        order by 3
        """,
    ),
    Lint(
        "extension_in_public", "0014_extension_in_public", "Extension in Public", "WARN",
        ("SECURITY",),
        "Detects extensions installed in the `public` schema.",
        """
        select pg_catalog.format('Extension `%s` is installed in the public schema. Move it to '
                   'another schema.', e.extname),
               pg_catalog.jsonb_build_object('schema', 'public', 'name', e.extname,
                   'type', 'extension'),
               pg_catalog.format('extension_in_public_%s', e.extname)
        from pg_catalog.pg_extension e
        join pg_catalog.pg_namespace n on n.oid = e.extnamespace
        where n.nspname = 'public' and e.extname <> 'plpgsql'
        order by 3
        """,
    ),
    Lint(
        "rls_references_user_metadata", "0015_rls_references_user_metadata",
        "RLS references user metadata", "ERROR", ("SECURITY",),
        "Detects when Supabase Auth user_metadata is referenced insecurely in a row level "
        "security (RLS) policy.",
        f"""
        select pg_catalog.format('Table `%s.%s` has a row level security policy `%s` that '
                   'references Supabase Auth `user_metadata`. `user_metadata` is editable by '
                   'end users and should never be used in a security context.',
                   n.nspname, c.relname, p.polname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('rls_references_user_metadata_%s_%s_%s', n.nspname, c.relname,
                   p.polname)
        from pg_catalog.pg_policy p
        join pg_catalog.pg_class c on c.oid = p.polrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        {_POLICY_EXPRS}
        cross join (select '(auth\\.jwt\\(\\)|current_setting\\(.*request\\.jwt\\.claims)'
                           '.*user_metadata' as re) x
        where n.nspname <> all(@policy_owned) and (e.qual ~ x.re or e.with_check ~ x.re)
        order by 3
        """,
    ),
    Lint(
        "materialized_view_in_api", "0016_materialized_view_in_api", "Materialized View in API",
        "WARN", ("SECURITY",),
        "Detects materialized views that are accessible over the Data APIs.",
        """
        select pg_catalog.format('Materialized view `%s.%s` is selectable by anon or '
                   'authenticated roles', n.nspname, c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'materialized view'),
               pg_catalog.format('materialized_view_in_api_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'm' and @exposed(c.oid) and n.nspname = any(@api)
          and n.nspname <> all(@owned) and @not_ext(c.oid)
        order by 3
        """,
    ),
    Lint(
        "foreign_table_in_api", "0017_foreign_table_in_api", "Foreign Table in API", "WARN",
        ("SECURITY",),
        "Detects foreign tables that are accessible over APIs. Foreign tables do not respect "
        "row level security policies.",
        """
        select pg_catalog.format('Foreign table `%s.%s` is accessible over APIs', n.nspname,
                   c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'foreign table'),
               pg_catalog.format('foreign_table_in_api_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'f' and @exposed(c.oid) and n.nspname = any(@api)
          and n.nspname <> all(@owned) and @not_ext(c.oid)
        order by 3
        """,
    ),
    Lint(
        "fkey_to_auth_unique", "0021_fkey_to_auth_unique",
        "Foreign Key to Auth Unique Constraint", "ERROR", ("SECURITY",),
        "Detects user defined foreign keys to unique constraints in the auth schema.",
        """
        select pg_catalog.format('Table `%s`.`%s` has a foreign key `%s` referencing an auth '
                   'unique constraint', n.nspname, c.relname, con.conname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'foreign_key', con.conname),
               pg_catalog.format('fkey_to_auth_unique_%s_%s_%s', n.nspname, c.relname,
                   con.conname)
        from pg_catalog.pg_constraint con
        join pg_catalog.pg_class c on c.oid = con.conrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_class rc on rc.oid = con.confrelid
        join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
        join pg_catalog.pg_index i on i.indexrelid = con.conindid
        where con.contype = 'f' and rn.nspname = 'auth' and i.indisunique
          and not i.indisprimary and n.nspname <> all(@owned)
        order by 3
        """,
    ),
    Lint(
        "sensitive_columns_exposed", "0023_sensitive_columns_exposed",
        "Sensitive Columns Exposed", "ERROR", ("SECURITY",),
        "Detects tables exposed via API that contain columns with potentially sensitive data "
        "(PII, credentials, financial info) without RLS protection.",
        """
        select pg_catalog.format('Table `%s.%s` is exposed via API without RLS and contains '
                   'potentially sensitive column(s): %s. This may lead to data exposure.',
                   n.nspname, c.relname,
                   pg_catalog.string_agg(a.attname, ', ' order by a.attname)),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table',
                   'sensitive_columns', pg_catalog.array_agg(a.attname order by a.attname),
                   'matched_patterns', pg_catalog.array_agg(
                       pg_catalog.replace(pg_catalog.lower(a.attname), '-', '_')
                       order by a.attname)),
               pg_catalog.format('sensitive_columns_exposed_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0
             and not a.attisdropped
        where c.relkind = 'r' and not c.relrowsecurity and @exposed(c.oid)
          and n.nspname = any(@api) and n.nspname <> all(@owned)
          and pg_catalog.replace(pg_catalog.lower(a.attname), '-', '_') = any(array[
            'password', 'passwd', 'pwd', 'passphrase', 'secret', 'secret_key', 'private_key',
            'api_key', 'apikey', 'auth_key', 'token', 'jwt', 'access_token', 'refresh_token',
            'oauth_token', 'session_token', 'bearer_token', 'auth_code', 'session_id',
            'session_key', 'session_secret', 'recovery_code', 'backup_code',
            'verification_code', 'otp', 'two_factor', '2fa_secret', '2fa_code', 'ssn',
            'social_security', 'social_security_number', 'driver_license', 'drivers_license',
            'license_number', 'passport_number', 'passport_id', 'national_id', 'tax_id',
            'credit_card', 'card_number', 'cvv', 'cvc', 'cvn', 'bank_account',
            'account_number', 'routing_number', 'iban', 'swift_code', 'bic', 'health_record',
            'medical_record', 'patient_id', 'insurance_number', 'health_insurance',
            'medical_insurance', 'treatment', 'mac_address', 'macaddr', 'imei', 'device_uuid',
            'pgp_key', 'gpg_key', 'ssh_key', 'certificate', 'license_key', 'activation_key',
            'facial_recognition'])
        group by n.nspname, c.relname
        order by 3
        """,
    ),
    Lint(
        "rls_policy_always_true", "0024_permissive_rls_policy", "RLS Policy Always True", "WARN",
        ("SECURITY",),
        "Detects RLS policies that use overly permissive expressions like `USING (true)` or "
        "`WITH CHECK (true)` for UPDATE, DELETE, or INSERT operations. SELECT policies with "
        "`USING (true)` are intentionally excluded as this pattern is often used deliberately "
        "for public read access.",
        f"""
        with pol as (
          select n.nspname, c.relname, p.polname, {_CMD} as cmd, e.qual, e.with_check,
                 (select pg_catalog.array_agg(case r when 0 then 'public'
                         else pg_catalog.pg_get_userbyid(r)::text end)
                  from pg_catalog.unnest(p.polroles) r) as roles,
                 pg_catalog.regexp_replace(pg_catalog.lower(coalesce(e.qual, '')),
                     '\\s', '', 'g') in ('true', '(true)', '1=1', '(1=1)') as qual_true,
                 pg_catalog.regexp_replace(pg_catalog.lower(coalesce(e.with_check,
                     '')), '\\s', '', 'g') in ('true', '(true)', '1=1', '(1=1)') as check_true
          from pg_catalog.pg_policy p
          join pg_catalog.pg_class c on c.oid = p.polrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          {_POLICY_EXPRS}
          where c.relkind = 'r' and c.relrowsecurity and p.polpermissive
            and n.nspname <> all(@policy_owned)
            and (p.polroles = '{{0}}'::oid[] or exists (
                   select 1 from pg_catalog.unnest(p.polroles) r
                   where pg_catalog.pg_get_userbyid(r) in ('anon', 'authenticated')))
        ), flagged as (
          select pol.*,
                 cmd in ('UPDATE', 'DELETE', 'ALL') and (qual_true or qual is null) as bad_using,
                 check_true or (with_check is null and cmd = 'INSERT')
                   or (with_check is null and cmd in ('UPDATE', 'ALL') and qual_true)
                   as bad_check
          from pol
        )
        select pg_catalog.format('Table `%s.%s` has an RLS policy `%s` for `%s` that allows '
                   'unrestricted access%s. This effectively bypasses row-level security for '
                   '%s.', nspname, relname, polname, cmd,
                   case when bad_using and bad_check
                          then ' (both USING and WITH CHECK are always true)'
                        when bad_using then ' (USING clause is always true)'
                        else ' (WITH CHECK clause is always true)' end,
                   pg_catalog.array_to_string(roles, ', ')),
               pg_catalog.jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table',
                   'policy_name', polname, 'command', cmd, 'roles', roles, 'qual', qual,
                   'with_check', with_check, 'permissive_using', bad_using,
                   'permissive_with_check', bad_check),
               pg_catalog.format('rls_policy_always_true_%s_%s_%s', nspname, relname, polname)
        from flagged
        where bad_using or bad_check
        order by 3
        """,
    ),
    Lint(
        "public_bucket_allows_listing", "0025_public_bucket_allows_listing",
        "Public Bucket Allows Listing", "WARN", ("SECURITY",),
        "Detects public storage buckets with a broad SELECT policy on `storage.objects`, "
        "which allows clients to list all files in the bucket.",
        """
        with broad as (
          select b.id, b.name,
                 pg_catalog.array_agg(p.policyname::text order by p.policyname) as policies
          from storage.buckets b
          join pg_catalog.pg_policies p on p.schemaname = 'storage' and p.tablename = 'objects'
               and p.cmd in ('SELECT', 'ALL') and p.permissive = 'PERMISSIVE'
               and p.roles && array['public', 'anon', 'authenticated']::name[]
          cross join lateral (select pg_catalog.regexp_replace(pg_catalog.lower(
                 coalesce(p.qual, 'true')), '[\\s()]', '', 'g') as q) nq
          where b.public and (nq.q in ('true', '1=1')
                 or nq.q in ('bucket_id=' || pg_catalog.lower(pg_catalog.quote_literal(b.id)),
                             'bucket_id=' || pg_catalog.lower(pg_catalog.quote_literal(b.id))
                               || '::text'))
          group by b.id, b.name
        )
        select pg_catalog.format('Public bucket `%s` has %s broad SELECT %s on '
                   '`storage.objects` (%s), allowing clients to list all files. Public buckets '
                   'don''t need this for object URL access and it may expose more data than '
                   'intended.', name, pg_catalog.cardinality(policies),
                   case pg_catalog.cardinality(policies) when 1 then 'policy' else 'policies' end,
                   pg_catalog.array_to_string(policies, ', ')),
               pg_catalog.jsonb_build_object('schema', 'storage', 'name', name, 'type', 'bucket',
                   'bucket_id', id, 'bucket_name', name, 'policy_names', policies,
                   'policy_count', pg_catalog.cardinality(policies)),
               pg_catalog.format('public_bucket_allows_listing_%s', id)
        from broad
        order by 3
        """,
        needs=("storage.buckets",),
    ),
    Lint(
        "anon_security_definer_function_executable",
        "0028_anon_security_definer_function_executable",
        "Public Can Execute SECURITY DEFINER Function", "WARN", ("SECURITY",),
        "Detects `SECURITY DEFINER` functions that are callable without signing in. Revoke "
        "`EXECUTE`, switch the function to `SECURITY INVOKER`, or move it out of your exposed "
        "API schema if it is not meant to be public.",
        """
        select pg_catalog.format('Function `%s.%s(%s)` can be executed by the `anon` role as a '
                   '`SECURITY DEFINER` function via `/rest/v1/rpc/%s`. Revoke `EXECUTE` or '
                   'switch it to `SECURITY INVOKER` if that is not intentional.',
                   n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
                   p.proname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', p.proname,
                   'arguments', pg_catalog.pg_get_function_identity_arguments(p.oid),
                   'language', l.lanname, 'security_definer', true),
               pg_catalog.format('anon_security_definer_function_executable_%s_%s_%s',
                   n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        join pg_catalog.pg_language l on l.oid = p.prolang
        where p.prosecdef and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')
          and n.nspname = any(@api) and n.nspname <> all(@owned)
        order by 3
        """,
    ),
    Lint(
        "authenticated_security_definer_function_executable",
        "0029_authenticated_security_definer_function_executable",
        "Signed-In Users Can Execute SECURITY DEFINER Function", "WARN", ("SECURITY",),
        "Detects `SECURITY DEFINER` functions that are callable by signed-in users. Revoke "
        "`EXECUTE`, switch the function to `SECURITY INVOKER`, or move it out of your exposed "
        "API schema if signed-in users should not call it.",
        """
        select pg_catalog.format('Function `%s.%s(%s)` can be executed by the `authenticated` '
                   'role as a `SECURITY DEFINER` function via `/rest/v1/rpc/%s`. Revoke '
                   '`EXECUTE` or switch it to `SECURITY INVOKER` if that is not intentional.',
                   n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
                   p.proname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', p.proname,
                   'arguments', pg_catalog.pg_get_function_identity_arguments(p.oid),
                   'language', l.lanname, 'security_definer', true),
               pg_catalog.format('authenticated_security_definer_function_executable_%s_%s_%s',
                   n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        join pg_catalog.pg_language l on l.oid = p.prolang
        where p.prosecdef
          and pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE')
          and n.nspname = any(@api) and n.nspname <> all(@owned)
        order by 3
        """,
    ),
)

# Lints that ask what the API roles may do: skipped where those roles do not exist.
_ROLE_LINTS = {
    "auth_users_exposed", "security_definer_view", "rls_disabled_in_public",
    "materialized_view_in_api", "foreign_table_in_api", "sensitive_columns_exposed",
    "anon_security_definer_function_executable",
    "authenticated_security_definer_function_executable",
}


def _scalar(conn: psycopg.Connection[Any], query: str, *params: object) -> Any:
    row = conn.execute(query, params or None).fetchone()
    return None if row is None else row[0]


def run_lints(
    conn: psycopg.Connection[Any],
    *,
    api_schemas: Sequence[str] | None = None,
    only: Sequence[str] | None = None,
) -> list[LintResult]:
    """Run the lints on an open psycopg connection; results are ordered ERROR, WARN, INFO.

    `api_schemas`: the schemas PostgREST exposes (default: the session's `pgrst.db_schemas`
    if set, else `public, graphql_public`). `only`: lint names to run (default: all).
    """
    if api_schemas is None:
        setting = _scalar(conn, "select current_setting('pgrst.db_schemas', true)")
        configured = [s.strip() for s in str(setting or "").split(",") if s.strip()]
        api_schemas = configured or list(DEFAULT_API_SCHEMAS)
    owned = list(SUPABASE_SCHEMAS)
    policy_owned = [s for s in owned if s != "storage"]
    # Deparsed policy expressions must carry schema names (`auth.uid()`, not `uid()`).
    conn.execute("set search_path to pg_catalog")
    conn.execute(
        "select set_config('rendio_lint.owned', %s::text[]::text, false), "
        "set_config('rendio_lint.policy_owned', %s::text[]::text, false), "
        "set_config('rendio_lint.api', %s::text[]::text, false)",
        (owned, policy_owned, list(api_schemas)),
    )
    roles = {r[0] for r in conn.execute(
        "select rolname from pg_catalog.pg_roles where rolname in ('anon', 'authenticated')")}
    results: list[LintResult] = []
    for spec in LINTS:
        if only is not None and spec.name not in only:
            continue
        if spec.name in _ROLE_LINTS and roles != {"anon", "authenticated"}:
            continue
        if any(_scalar(conn, "select to_regclass(%s) is null", rel) for rel in spec.needs):
            continue
        for detail, metadata, cache_key in conn.execute(_expand(spec.query)).fetchall():
            results.append(LintResult(
                name=spec.name, title=spec.title, level=spec.level, facing="EXTERNAL",
                categories=list(spec.categories), description=spec.description,
                detail=detail, remediation=spec.remediation, metadata=metadata,
                cache_key=cache_key,
            ))
    conn.execute("reset search_path")
    order = {"ERROR": 0, "WARN": 1, "INFO": 2}
    return sorted(results, key=lambda r: (order[r.level], r.name, r.cache_key))


def lint(db_url: str, *, api_schemas: Sequence[str] | None = None,
         only: Sequence[str] | None = None) -> list[LintResult]:
    """Connect to `db_url` and run the lints (see `run_lints`)."""
    with connect(db_url) as conn:
        return run_lints(conn, api_schemas=api_schemas, only=only)


def failing(results: Sequence[LintResult]) -> list[LintResult]:
    """The results that fail a check: WARN and ERROR (INFO is advice)."""
    return [r for r in results if r.level in ("ERROR", "WARN")]
