"""Security and performance lints that agree with Supabase's database advisor (splinter).

Every lint of splinter.sql is here with splinter's `name`, `title`, `level`, `facing`,
`categories`, `description`, `remediation` and `cache_key`, so a finding can be matched
with (or excluded like) the one the hosted dashboard shows. The queries are our own,
written to splinter's semantics and checked against it by tests/db/test_lint_parity.py
(one fixture that must trigger each lint, one near miss that must not). Where splinter's
rule looks odd we keep it anyway, because parity is the point; those spots say so.

Scope, as in splinter: objects in the schemas Supabase owns (`SUPABASE_SCHEMAS`: auth,
storage, realtime, extensions, …) are skipped, with splinter's exceptions: the initplan
lint also reads policies in `realtime` (realtime.messages), the auth foreign-key lint
looks everywhere and the reg-types lint everywhere but pg_catalog, information_schema and
pgsodium, and the public-bucket lint reads `storage.objects` policies. "Exposed" means
in a schema PostgREST serves (`api_schemas`: the session's `pgrst.db_schemas` when set,
as on hosted, else `public, graphql_public` as in supabase/config.toml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import psycopg

from .connection import connect

__all__ = [
    "LEVELS", "LINTS", "FailOn", "Level", "Lint", "LintResult", "at_least", "failing",
    "in_schemas", "lint", "run_lints",
]

Level = Literal["ERROR", "WARN", "INFO"]
FailOn = Literal["none", "warn", "error"]
LEVELS: tuple[Level, ...] = ("INFO", "WARN", "ERROR")  # lowest first

# Schemas owned by Supabase or its extensions (splinter's list): not ours to lint.
SUPABASE_SCHEMAS = (
    "_timescaledb_cache", "_timescaledb_catalog", "_timescaledb_config",
    "_timescaledb_internal", "auth", "cron", "extensions", "graphql", "graphql_public",
    "information_schema", "net", "pgmq", "pgroonga", "pgsodium", "pgsodium_masks", "pgtle",
    "pgbouncer", "pg_catalog", "realtime", "repack", "storage", "supabase_functions",
    "supabase_migrations", "tiger", "topology", "vault",
)
DEFAULT_API_SCHEMAS = ("public", "graphql_public")
DOCS = "https://supabase.com/docs/guides/database/database-linter?lint="

# Shorthands of the lint queries. The schema lists are session settings made by run_lints,
# so the queries carry no client-side placeholders and a `%` in them stays literal.
_LISTS = {
    # splinter's initplan lint alone keeps realtime (policies on realtime.messages)
    "@initplan_owned": "pg_catalog.current_setting('rendio_lint.initplan_owned')::text[]",
    "@owned": "pg_catalog.current_setting('rendio_lint.owned')::text[]",
    "@api": "pg_catalog.current_setting('rendio_lint.api')::text[]",
}
_FUNCS = {
    # @exposed(rel): anon or authenticated may select from the relation
    "exposed": "(pg_catalog.has_table_privilege('anon', {x}, 'SELECT') "
               "or pg_catalog.has_table_privilege('authenticated', {x}, 'SELECT'))",
    # @invoker(reloptions): the view is declared security_invoker
    "invoker": "(pg_catalog.lower(coalesce({x}::text, '{{}}'))::text[] && array["
               "'security_invoker=1', 'security_invoker=true', 'security_invoker=yes', "
               "'security_invoker=on'])",
    # @not_ext(oid): the object does not belong to an extension
    "not_ext": "not exists (select 1 from pg_catalog.pg_depend ext "
               "where ext.deptype = 'e' and ext.objid = {x})",
    # @cmd(polcmd): a policy's command as pg_policies spells it
    "cmd": "(case {x} when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE' "
           "when 'd' then 'DELETE' when '*' then 'ALL' end)",
    # @always_true(expr): splinter's "always true" test: the text, lower case, without
    # spaces, tabs and newlines (other whitespace is kept, as splinter keeps it)
    "always_true": "(pg_catalog.translate(pg_catalog.lower(coalesce({x}, '')), "
                   "E' \\n\\t', '') in ('true', '(true)', '1=1', '(1=1)'))",
}
_FUNC_RE = re.compile(r"@(exposed|invoker|not_ext|cmd|always_true)\(([\w.]+)\)")


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
    code: str  # splinter's file name, e.g. 0001_unindexed_foreign_keys: the docs anchor
    title: str
    level: Level
    categories: tuple[str, ...]
    description: str
    query: str = field(repr=False)
    needs: tuple[str, ...] = ()  # relations that must exist, e.g. storage.buckets
    roles: bool = False  # asks what anon/authenticated may do: skipped without them
    # splinter's `remediation` where it is not the docs link (0018's link names no
    # number; 0020 and 0021 give a sentence)
    remediation_text: str | None = None

    @property
    def docs(self) -> str:
        """The lint's page in Supabase's database-linter docs."""
        return DOCS + self.code

    @property
    def remediation(self) -> str:
        return self.remediation_text or self.docs


@dataclass(frozen=True)
class LintResult:
    """One finding, in splinter's shape (the fields of a splinter.sql row)."""

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

    @property
    def schema(self) -> str | None:
        """The schema of the object the finding is about (None: database-wide)."""
        value = self.metadata.get("schema")
        return None if value is None else str(value)


# Policies with their expressions deparsed under run_lints' search_path (pg_catalog only),
# so calls read `auth.uid()` as in splinter, which runs with an empty search_path.
_POLICIES = """
    pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    cross join lateral (select pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
                               pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check) e
"""

# pg_graphql exposes a relation whose columns the role may select, any one of them.
_GRAPHQL = """
    select pg_catalog.format('%s `%s.%s` is visible in the GraphQL schema {why}',
               t.kind, n.nspname, c.relname),
           pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
               'type', t.kind),
           pg_catalog.format('{name}_%s_%s', n.nspname, c.relname)
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    cross join lateral (select case c.relkind when 'r' then 'table' when 'v' then 'view'
                          when 'm' then 'materialized view' when 'f' then 'foreign table'
                        end as kind) t
    where c.relkind in ('r', 'v', 'm', 'f') and n.nspname <> all(@owned)
      and exists (select 1 from pg_catalog.pg_extension where extname = 'pg_graphql')
      and exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                    and pg_catalog.has_column_privilege('{role}', c.oid, a.attnum, 'SELECT'))
    order by 3
"""

_DEFINER = """
    select pg_catalog.format('Function `%s.%s(%s)` can be executed by the `{role}` role as a '
               '`SECURITY DEFINER` function via `/rest/v1/rpc/%s`. Revoke `EXECUTE` or '
               'switch it to `SECURITY INVOKER` if that is not intentional.',
               n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
               p.proname),
           pg_catalog.jsonb_build_object('schema', n.nspname, 'name', p.proname,
               'arguments', pg_catalog.pg_get_function_identity_arguments(p.oid),
               'language', l.lanname, 'security_definer', true),
           pg_catalog.format('{name}_%s_%s_%s', n.nspname, p.proname,
               pg_catalog.pg_get_function_identity_arguments(p.oid))
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    join pg_catalog.pg_language l on l.oid = p.prolang
    where p.prosecdef and pg_catalog.has_function_privilege('{role}', p.oid, 'EXECUTE')
      and n.nspname = any(@api) and n.nspname <> all(@owned)
    order by 3
"""

_SENSITIVE_NAMES = (
    "password", "passwd", "pwd", "passphrase", "secret", "secret_key", "private_key",
    "api_key", "apikey", "auth_key", "token", "jwt", "access_token", "refresh_token",
    "oauth_token", "session_token", "bearer_token", "auth_code", "session_id", "session_key",
    "session_secret", "recovery_code", "backup_code", "verification_code", "otp",
    "two_factor", "2fa_secret", "2fa_code", "ssn", "social_security",
    "social_security_number", "driver_license", "drivers_license", "license_number",
    "passport_number", "passport_id", "national_id", "tax_id", "credit_card", "card_number",
    "cvv", "cvc", "cvn", "bank_account", "account_number", "routing_number", "iban",
    "swift_code", "bic", "health_record", "medical_record", "patient_id", "insurance_number",
    "health_insurance", "medical_insurance", "treatment", "mac_address", "macaddr", "imei",
    "device_uuid", "pgp_key", "gpg_key", "ssh_key", "certificate", "license_key",
    "activation_key", "facial_recognition",
)


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _on_relations(key: str, detail: str, kind: str, where: str) -> str:
    """A lint query with one finding per relation `c` (in schema `n`) matching `where`.

    `detail` formats the schema and relation names; the cache key is `<key>_<schema>_<name>`.
    """
    return f"""
        select pg_catalog.format('{detail}', n.nspname, c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', '{kind}'),
               pg_catalog.format('{key}_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where {where}
        order by 3
    """


LINTS: tuple[Lint, ...] = (
    Lint(
        "unindexed_foreign_keys", "0001_unindexed_foreign_keys", "Unindexed foreign keys",
        "INFO", ("PERFORMANCE",),
        "Identifies foreign key constraints without a covering index, which can impact "
        "database performance.",
        # Covered: a valid index (partial ones count) whose leading columns are the key's
        # columns in the key's order. The schema is spelt as regnamespace prints it.
        """
        select pg_catalog.format('Table `%s.%s` has a foreign key `%s` without a covering '
                   'index. This can lead to suboptimal query performance.',
                   s.nsp, c.relname, con.conname),
               pg_catalog.jsonb_build_object('schema', s.nsp, 'name', c.relname,
                   'type', 'table', 'fkey_name', con.conname, 'fkey_columns', con.conkey),
               pg_catalog.format('unindexed_foreign_keys_%s_%s_%s', s.nsp, c.relname,
                   con.conname)
        from pg_catalog.pg_constraint con
        join pg_catalog.pg_class c on c.oid = con.conrelid
        cross join lateral (select c.relnamespace::pg_catalog.regnamespace::text as nsp) s
        where con.contype = 'f' and s.nsp <> all(@owned) and @not_ext(c.oid)
          and not exists (
            select 1 from pg_catalog.pg_index i
            where i.indrelid = c.oid and i.indisvalid
              and (pg_catalog.string_to_array(i.indkey::text, ' ')::int2[])
                    [1:pg_catalog.cardinality(con.conkey)] = con.conkey)
        order by 3
        """,
    ),
    Lint(
        "auth_users_exposed", "0002_auth_users_exposed", "Exposed Auth Users", "ERROR",
        ("SECURITY",),
        "Detects if auth.users is exposed to anon or authenticated roles via a view or "
        "materialized view in schemas exposed to PostgREST, potentially compromising user "
        "data security.",
        # A security-invoker view is only safe while auth.users itself has RLS.
        # `exposed_to` names one role, anon first, as splinter's aggregate does.
        """
        select pg_catalog.format('View/Materialized View "%s" in the public schema may expose '
                   '`auth.users` data to anon or authenticated roles.', c.relname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'view', 'exposed_to', pg_catalog.jsonb_build_array(
                     case when pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
                          then 'anon' else 'authenticated' end)),
               pg_catalog.format('auth_users_exposed_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        cross join (select oid, relrowsecurity from pg_catalog.pg_class
                    where oid = pg_catalog.to_regclass('auth.users')) au
        where c.relkind in ('v', 'm') and n.nspname = any(@api) and @exposed(c.oid)
          and exists (
            select 1 from pg_catalog.pg_rewrite r
            join pg_catalog.pg_depend d on d.objid = r.oid
                 and d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
            where r.ev_class = c.oid and d.refobjid = au.oid and d.deptype = 'n')
          and (c.relkind = 'm' or not @invoker(c.reloptions) or not au.relrowsecurity)
        order by 3
        """,
        needs=("auth.users",), roles=True,
    ),
    Lint(
        "auth_rls_initplan", "0003_auth_rls_initplan", "Auth RLS Initialization Plan", "WARN",
        ("PERFORMANCE",),
        "Detects if calls to `current_setting()` and `auth.<function>()` in RLS policies are "
        "being unnecessarily re-evaluated for each row",
        # A call counts as wrapped when the deparsed expression reads `select <call>`
        # anywhere: `(select auth.uid())` is, `(select auth.jwt() ->> 'x')` is not (it
        # deparses as `SELECT (auth.jwt() ->> ...)`), and one wrapped call of a function
        # clears every bare one of that same function in that expression, as in splinter.
        """
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
        from """ + _POLICIES + """
        where c.relrowsecurity and n.nspname <> all(@initplan_owned)
          and exists (
            select 1
            from pg_catalog.unnest(array[e.qual, e.with_check]) x(expr)
            cross join pg_catalog.unnest(array['auth.uid()', 'auth.jwt()', 'auth.role()',
                                               'auth.email()', 'current\\_setting(%)']) f(call)
            where x.expr like '%' || f.call || '%'
              and pg_catalog.lower(x.expr) not like '%select ' || f.call || '%')
        order by 3
        """,
    ),
    Lint(
        "no_primary_key", "0004_no_primary_key", "No Primary Key", "INFO", ("PERFORMANCE",),
        "Detects if a table does not have a primary key. Tables without a primary key can be "
        "inefficient to interact with at scale.",
        _on_relations(
            "no_primary_key", "Table `%s.%s` does not have a primary key", "table",
            """c.relkind = 'r' and n.nspname <> all(@owned) and @not_ext(c.oid)
               and not exists (select 1 from pg_catalog.pg_index i
                               where i.indrelid = c.oid and i.indisprimary)"""),
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
        # A policy for PUBLIC counts for every role. Roles are filtered with splinter's LIKE
        # patterns, where `_` matches any character: 'pg_%' also skips pgbouncer.
        """
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
        join pg_catalog.pg_roles r on r.oid = any(p.polroles) or p.polroles = '{0}'::oid[]
        cross join lateral pg_catalog.unnest(case p.polcmd
            when '*' then array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
            else array[@cmd(p.polcmd)] end) a(cmd)
        where c.relkind = 'r' and p.polpermissive and n.nspname <> all(@owned)
          and r.rolname not like 'pg_%' and r.rolname not like 'supabase%admin'
          and not r.rolbypassrls and @not_ext(c.oid)
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
        _on_relations(
            "rls_enabled_no_policy", "Table `%s.%s` has RLS enabled, but no policies exist",
            "table",
            """c.relkind = 'r' and c.relrowsecurity and n.nspname <> all(@owned)
               and @not_ext(c.oid)
               and not exists (select 1 from pg_catalog.pg_policy p
                               where p.polrelid = c.oid)"""),
    ),
    Lint(
        "duplicate_index", "0009_duplicate_index", "Duplicate Index", "WARN", ("PERFORMANCE",),
        "Detects cases where two ore more identical indexes exist.",
        # Identical = the same CREATE INDEX text once the index's own name is taken out:
        # method, columns, operator classes, collations, INCLUDE, predicate, uniqueness and
        # storage parameters (WITH (fillfactor=…)) all have to match.
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
        group by n.nspname, c.relkind, c.relname,
                 pg_catalog.replace(pg_catalog.pg_get_indexdef(i.indexrelid), ic.relname, '')
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
        _on_relations(
            "security_definer_view",
            "View `%s.%s` is defined with the SECURITY DEFINER property", "view",
            """c.relkind = 'v' and @exposed(c.oid) and n.nspname = any(@api)
               and n.nspname <> all(@owned) and @not_ext(c.oid)
               and not @invoker(c.reloptions)
               and pg_catalog.current_setting('server_version_num')::int >= 150000"""),
        roles=True,
    ),
    Lint(
        "function_search_path_mutable", "0011_function_search_path_mutable",
        "Function Search Path Mutable", "WARN", ("SECURITY",),
        "Detects functions where the search_path parameter is not set.",
        # Every kind of routine, aggregates and procedures included, as in splinter (an
        # aggregate cannot take SET, so one outside an extension is always reported).
        # The md5 of the source tells overloads apart.
        """
        select pg_catalog.format('Function `%s.%s` has a role mutable search_path', n.nspname,
                   p.proname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', p.proname,
                   'type', 'function'),
               pg_catalog.format('function_search_path_mutable_%s_%s_%s', n.nspname, p.proname,
                   pg_catalog.md5(p.prosrc))
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname <> all(@owned) and @not_ext(p.oid)
          and not exists (select 1 from pg_catalog.unnest(p.proconfig) cfg
                          where cfg like 'search_path=%')
        order by 3
        """,
    ),
    Lint(
        "rls_disabled_in_public", "0013_rls_disabled_in_public", "RLS Disabled in Public",
        "ERROR", ("SECURITY",),
        "Detects cases where row level security (RLS) has not been enabled on tables in "
        "schemas exposed to PostgREST",
        _on_relations(
            "rls_disabled_in_public", "Table `%s.%s` is public, but RLS has not been enabled.",
            "table",
            """c.relkind = 'r' and not c.relrowsecurity and @exposed(c.oid)
               and n.nspname = any(@api) and n.nspname <> all(@owned)"""),
        roles=True,
    ),
    Lint(
        "extension_in_public", "0014_extension_in_public", "Extension in Public", "WARN",
        ("SECURITY",),
        "Detects extensions installed in the `public` schema.",
        """
        select pg_catalog.format('Extension `%s` is installed in the public schema. Move it to '
                   'another schema.', e.extname),
               pg_catalog.jsonb_build_object('schema', e.extnamespace::pg_catalog.regnamespace,
                   'name', e.extname, 'type', 'extension'),
               pg_catalog.format('extension_in_public_%s', e.extname)
        from pg_catalog.pg_extension e
        where e.extnamespace::pg_catalog.regnamespace::text = 'public'
          and e.extname <> 'plpgsql'
        order by 3
        """,
    ),
    Lint(
        "rls_references_user_metadata", "0015_rls_references_user_metadata",
        "RLS references user metadata", "ERROR", ("SECURITY",),
        "Detects when Supabase Auth user_metadata is referenced insecurely in a row level "
        "security (RLS) policy.",
        # splinter's LIKE patterns as they are (`_` matches any character there).
        """
        select pg_catalog.format('Table `%s.%s` has a row level security policy `%s` that '
                   'references Supabase Auth `user_metadata`. `user_metadata` is editable by '
                   'end users and should never be used in a security context.',
                   n.nspname, c.relname, p.polname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table'),
               pg_catalog.format('rls_references_user_metadata_%s_%s_%s', n.nspname, c.relname,
                   p.polname)
        from """ + _POLICIES + """
        where n.nspname <> all(@owned)
          and exists (
            select 1 from pg_catalog.unnest(array[e.qual, e.with_check]) x(expr)
            where x.expr like '%auth.jwt()%user_metadata%'
               or x.expr like '%current_setting(%request.jwt.claims%)%user_metadata%')
        order by 3
        """,
    ),
    Lint(
        "materialized_view_in_api", "0016_materialized_view_in_api", "Materialized View in API",
        "WARN", ("SECURITY",),
        "Detects materialized views that are accessible over the Data APIs.",
        _on_relations(
            "materialized_view_in_api",
            "Materialized view `%s.%s` is selectable by anon or authenticated roles",
            "materialized view",
            """c.relkind = 'm' and @exposed(c.oid) and n.nspname = any(@api)
               and n.nspname <> all(@owned) and @not_ext(c.oid)"""),
        roles=True,
    ),
    Lint(
        "foreign_table_in_api", "0017_foreign_table_in_api", "Foreign Table in API", "WARN",
        ("SECURITY",),
        "Detects foreign tables that are accessible over APIs. Foreign tables do not respect "
        "row level security policies.",
        _on_relations(
            "foreign_table_in_api", "Foreign table `%s.%s` is accessible over APIs",
            "foreign table",
            """c.relkind = 'f' and @exposed(c.oid) and n.nspname = any(@api)
               and n.nspname <> all(@owned) and @not_ext(c.oid)"""),
        roles=True,
    ),
    Lint(
        "unsupported_reg_types", "0018_unsupported_reg_types", "Unsupported reg types", "WARN",
        ("SECURITY",),
        "Identifies columns using unsupported reg* types outside pg_catalog schema, which "
        "prevents database upgrades using pg_upgrade.",
        # Any relation's attributes (an index on such a column is reported too) in any
        # schema but the three splinter spares; regclass, regrole and regtype are fine.
        """
        select pg_catalog.format('Table `%s.%s` has a column `%s` with unsupported reg* type '
                   '`%s`.', n.nspname, c.relname, a.attname, t.typname),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'column', a.attname, 'type', 'table'),
               pg_catalog.format('unsupported_reg_types_%s_%s_%s', n.nspname, c.relname,
                   a.attname)
        from pg_catalog.pg_attribute a
        join pg_catalog.pg_class c on c.oid = a.attrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_type t on t.oid = a.atttypid
        where t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
          and t.typname in ('regcollation', 'regconfig', 'regdictionary', 'regnamespace',
                            'regoper', 'regoperator', 'regproc', 'regprocedure')
          and n.nspname not in ('pg_catalog', 'information_schema', 'pgsodium')
        order by 3
        """,
        remediation_text=DOCS + "unsupported_reg_types",
    ),
    Lint(
        "insecure_queue_exposed_in_api", "0019_insecure_queue_exposed_in_api",
        "Insecure Queue Exposed in API", "ERROR", ("SECURITY",),
        "Detects cases where an insecure Queue is exposed over Data APIs",
        # Only when pgmq_public is an exposed schema. The detail and cache_key are those of
        # rls_disabled_in_public, as splinter has them.
        _on_relations(
            "rls_disabled_in_public", "Table `%s.%s` is public, but RLS has not been enabled.",
            "table",
            """c.relkind in ('r', 'I') and not c.relrowsecurity and @exposed(c.oid)
               and n.nspname = 'pgmq' and c.relname like 'q_%' and 'pgmq_public' = any(@api)"""),
        roles=True,
    ),
    Lint(
        "table_bloat", "0020_table_bloat", "Table Bloat", "INFO", ("PERFORMANCE",),
        "Detects if a table has excess bloat and may benefit from maintenance operations like "
        "vacuum full or cluster.",
        # The usual estimate from planner statistics: the pages the rows should fill (23-byte
        # tuple header, 4-byte alignment, null bitmap) against the pages the table has.
        # Reported above 70x and 20 MB of waste; tables without statistics are skipped.
        """
        with widths as (
          select s.schemaname, s.tablename,
                 (pg_catalog.sum((1 - s.null_frac) * s.avg_width) + 24)::numeric as datahdr,
                 pg_catalog.max(s.null_frac) as maxfracsum,
                 23 + 1 + pg_catalog.count(*) filter (where s.null_frac <> 0) / 8 as nullhdr
          from pg_catalog.pg_stats s
          group by s.schemaname, s.tablename
        ), sizes as (
          select w.schemaname, w.tablename, c.relpages, b.bs,
                 pg_catalog.ceil(c.reltuples
                   * (w.datahdr + 4 - coalesce(nullif(w.datahdr % 4, 0), 4)
                      + w.maxfracsum * (w.nullhdr + 4 - coalesce(nullif(w.nullhdr % 4, 0), 4))
                      + 4) / (b.bs - 20::float)) as otta
          from widths w
          cross join (select pg_catalog.current_setting('block_size')::numeric as bs) b
          join pg_catalog.pg_namespace n on n.nspname = w.schemaname
               and n.nspname <> 'information_schema'
          join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = w.tablename
          where c.relkind = 'r'
            and c.relam = (select oid from pg_catalog.pg_am where amname = 'heap')
        )
        select pg_catalog.format('Table `%s`.`%s` has excessive bloat', schemaname, tablename),
               pg_catalog.jsonb_build_object('schema', schemaname, 'name', tablename,
                   'type', 'table'),
               pg_catalog.format('table_bloat_%s_%s', schemaname, tablename)
        from sizes
        where pg_catalog.round(case when otta = 0 then 0.0
                                    else relpages / otta::numeric end, 1) > 70.0
          and case when relpages < otta then 0
                   else (bs * (relpages - otta)::bigint)::bigint end > 20 * 1024 * 1024
        order by 3
        """,
        remediation_text="Consider running vacuum full (WARNING: incurs downtime) and "
        "tweaking autovacuum settings to reduce bloat.",
    ),
    Lint(
        "fkey_to_auth_unique", "0021_fkey_to_auth_unique",
        "Foreign Key to Auth Unique Constraint", "ERROR", ("SECURITY",),
        "Detects user defined foreign keys to unique constraints in the auth schema.",
        # From any schema (splinter does not skip its own list here); the primary key is fine.
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
          and not i.indisprimary
        order by 3
        """,
        remediation_text="Drop the foreign key constraint that references the auth schema.",
    ),
    Lint(
        "extension_versions_outdated", "0022_extension_versions_outdated",
        "Extension Versions Outdated", "WARN", ("SECURITY",),
        "Detects extensions that are not using the default (recommended) version.",
        # Only installed versions the server still ships (not e.g. pg_upgrade leftovers).
        """
        select pg_catalog.format('Extension `%s` is using version `%s` but version `%s` is '
                   'available. Using outdated extension versions may expose the database to '
                   'security vulnerabilities.', x.name, x.installed_version, x.default_version),
               pg_catalog.jsonb_build_object('extension_name', x.name,
                   'installed_version', x.installed_version,
                   'default_version', x.default_version),
               pg_catalog.format('extension_versions_outdated_%s_%s', x.name,
                   x.installed_version)
        from pg_catalog.pg_available_extensions x
        where x.installed_version <> x.default_version
          and exists (select 1 from pg_catalog.pg_available_extension_versions v
                      where v.name = x.name and v.installed)
        order by 3
        """,
    ),
    Lint(
        "sensitive_columns_exposed", "0023_sensitive_columns_exposed",
        "Sensitive Columns Exposed", "ERROR", ("SECURITY",),
        "Detects tables exposed via API that contain columns with potentially sensitive data "
        "(PII, credentials, financial info) without RLS protection.",
        f"""
        select pg_catalog.format('Table `%s.%s` is exposed via API without RLS and contains '
                   'potentially sensitive column(s): %s. This may lead to data exposure.',
                   n.nspname, c.relname,
                   pg_catalog.string_agg(distinct a.attname, ', ' order by a.attname)),
               pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname,
                   'type', 'table',
                   'sensitive_columns',
                   pg_catalog.array_agg(distinct a.attname order by a.attname),
                   'matched_patterns', pg_catalog.array_agg(distinct k.word order by k.word)),
               pg_catalog.format('sensitive_columns_exposed_%s_%s', n.nspname, c.relname)
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0
             and not a.attisdropped
        cross join lateral (select pg_catalog.replace(pg_catalog.lower(a.attname), '-', '_')
                            as word) k
        where c.relkind = 'r' and not c.relrowsecurity and @exposed(c.oid)
          and n.nspname = any(@api) and n.nspname <> all(@owned)
          and k.word in ({_sql_list(_SENSITIVE_NAMES)})
        group by n.nspname, c.relname
        order by 3
        """,
        roles=True,
    ),
    Lint(
        "rls_policy_always_true", "0024_permissive_rls_policy", "RLS Policy Always True", "WARN",
        ("SECURITY",),
        "Detects RLS policies that use overly permissive expressions like `USING (true)` or "
        "`WITH CHECK (true)` for UPDATE, DELETE, or INSERT operations. SELECT policies with "
        "`USING (true)` are intentionally excluded as this pattern is often used deliberately "
        "for public read access.",
        # Permissive policies for anon, authenticated or PUBLIC on RLS tables. Roles are
        # listed as regrole prints them, so PUBLIC reads `-` as in splinter.
        """
        with pol as (
          select n.nspname, c.relname, p.polname, @cmd(p.polcmd) as cmd, e.qual, e.with_check,
                 (select pg_catalog.array_agg(r::pg_catalog.regrole::text)
                  from pg_catalog.unnest(p.polroles) r) as roles,
                 @always_true(e.qual) as qual_true, @always_true(e.with_check) as check_true
          from """ + _POLICIES + """
          where c.relkind = 'r' and c.relrowsecurity and p.polpermissive
            and n.nspname <> all(@owned)
            and (p.polroles = '{0}'::oid[] or exists (
                   select 1 from pg_catalog.unnest(p.polroles) r
                   where r::pg_catalog.regrole::text in ('anon', 'authenticated')))
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
        # Broad: no USING, an always-true one, or exactly `bucket_id = '<this bucket's id>'`
        # (optionally cast, in parentheses). The literal is compared as deparsed, quotes
        # doubled and backslashes not (so not quote_literal): case and all matter.
        """
        with broad as (
          select b.id, b.name,
                 pg_catalog.array_agg(p.policyname order by p.policyname) as policies
          from storage.buckets b
          join pg_catalog.pg_policies p on p.schemaname = 'storage' and p.tablename = 'objects'
               and p.cmd in ('SELECT', 'ALL') and p.permissive = 'PERMISSIVE'
               and p.roles && array['public', 'anon', 'authenticated']::name[]
          where b.public
            and (p.qual is null or @always_true(p.qual)
                 or (pg_catalog.regexp_match(p.qual,
                       '^\\s*\\(*\\s*bucket_id\\s*=\\s*(''(?:[^'']|'''')*'')'
                       '(?:\\s*::\\s*[\\w.]+)?\\s*\\)*\\s*$', 'i'))[1]
                    = '''' || pg_catalog.replace(b.id, '''', '''''') || '''')
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
        "pg_graphql_anon_table_exposed", "0026_pg_graphql_anon_table_exposed",
        "Public Can See Object in GraphQL Schema", "WARN", ("SECURITY",),
        "Detects tables, views, materialized views, and foreign tables that are visible in the "
        "GraphQL schema to anyone using your public anon key. Revoke `SELECT` from `anon` for "
        "objects that should not be discoverable before sign-in, and check lint 0027 for the "
        "matching signed-in-user exposure.",
        _GRAPHQL.format(
            name="pg_graphql_anon_table_exposed", role="anon",
            why="because the `anon` role can `SELECT` it. Revoke `SELECT` from `anon` if it "
                "should not be discoverable without signing in."),
        roles=True,
    ),
    Lint(
        "pg_graphql_authenticated_table_exposed",
        "0027_pg_graphql_authenticated_table_exposed",
        "Signed-In Users Can See Object in GraphQL Schema", "WARN", ("SECURITY",),
        "Detects tables, views, materialized views, and foreign tables that are visible in the "
        "GraphQL schema to signed-in users. Revoke `SELECT` from `authenticated` for objects "
        "that signed-in users should not discover, and check lint 0026 for the matching "
        "public exposure.",
        _GRAPHQL.format(
            name="pg_graphql_authenticated_table_exposed", role="authenticated",
            why="to signed-in users because the `authenticated` role can `SELECT` it. Revoke "
                "`SELECT` from `authenticated` if it should not be discoverable to every "
                "account."),
        roles=True,
    ),
    Lint(
        "anon_security_definer_function_executable",
        "0028_anon_security_definer_function_executable",
        "Public Can Execute SECURITY DEFINER Function", "WARN", ("SECURITY",),
        "Detects `SECURITY DEFINER` functions that are callable without signing in. Revoke "
        "`EXECUTE`, switch the function to `SECURITY INVOKER`, or move it out of your exposed "
        "API schema if it is not meant to be public.",
        _DEFINER.format(name="anon_security_definer_function_executable", role="anon"),
        roles=True,
    ),
    Lint(
        "authenticated_security_definer_function_executable",
        "0029_authenticated_security_definer_function_executable",
        "Signed-In Users Can Execute SECURITY DEFINER Function", "WARN", ("SECURITY",),
        "Detects `SECURITY DEFINER` functions that are callable by signed-in users. Revoke "
        "`EXECUTE`, switch the function to `SECURITY INVOKER`, or move it out of your exposed "
        "API schema if signed-in users should not call it.",
        _DEFINER.format(name="authenticated_security_definer_function_executable",
                        role="authenticated"),
        roles=True,
    ),
)


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
    initplan_owned = [s for s in owned if s != "realtime"]
    results: list[LintResult] = []
    # One transaction with transaction-local settings: through a transaction pooler
    # (Supavisor) session settings would not reach the next statement.
    with conn.transaction():
        saved_path = _scalar(conn, "select current_setting('search_path')")
        # Deparsed expressions must carry schema names (`auth.uid()`, not `uid()`), as
        # under splinter's empty search_path.
        conn.execute(
            "select set_config('search_path', 'pg_catalog', true), "
            "set_config('rendio_lint.owned', %s::text[]::text, true), "
            "set_config('rendio_lint.initplan_owned', %s::text[]::text, true), "
            "set_config('rendio_lint.api', %s::text[]::text, true)",
            (owned, initplan_owned, list(api_schemas)),
        )
        roles = {r[0] for r in conn.execute(
            "select rolname from pg_catalog.pg_roles "
            "where rolname in ('anon', 'authenticated')")}
        for spec in LINTS:
            if only is not None and spec.name not in only:
                continue
            # has_table_privilege('anon', …) raises where the role does not exist.
            if spec.roles and roles != {"anon", "authenticated"}:
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
        # A caller's own transaction goes on with its search_path.
        conn.execute("select set_config('search_path', %s, true)", (saved_path,))
    order = {"ERROR": 0, "WARN": 1, "INFO": 2}
    return sorted(results, key=lambda r: (order[r.level], r.name, r.cache_key))


def lint(db_url: str, *, api_schemas: Sequence[str] | None = None,
         only: Sequence[str] | None = None) -> list[LintResult]:
    """Connect to `db_url` and run the lints (see `run_lints`)."""
    with connect(db_url) as conn:
        return run_lints(conn, api_schemas=api_schemas, only=only)


def at_least(results: Iterable[LintResult], level: Level) -> list[LintResult]:
    """The results at `level` or above (INFO < WARN < ERROR)."""
    floor = LEVELS.index(level)
    return [r for r in results if LEVELS.index(r.level) >= floor]


def in_schemas(results: Iterable[LintResult], schemas: Iterable[str]) -> list[LintResult]:
    """The results about objects in `schemas` (database-wide findings have none: dropped)."""
    wanted = set(schemas)
    return [r for r in results if r.schema in wanted]


def failing(results: Iterable[LintResult], fail_on: FailOn = "warn") -> list[LintResult]:
    """The results that fail a check: WARN and ERROR by default (INFO is advice)."""
    if fail_on == "none":
        return []
    return at_least(results, "WARN" if fail_on == "warn" else "ERROR")
