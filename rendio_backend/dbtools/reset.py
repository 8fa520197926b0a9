"""Emptying a database that is not the local stack's, as `supabase db reset --db-url` does.

A database we did not create cannot be dropped and recreated (on hosted Supabase,
`postgres` is not a superuser), so, like the Supabase CLI's remote reset, this drops
what migrations create: user schemas, every object of `public`, the policies on
Storage's and Auth's tables and the migration history. Roles are cluster-wide and
stay, as they do there. It runs as the URL's own role, in one transaction: either
everything goes or nothing does.
"""

from __future__ import annotations

import psycopg

from .schema import PLATFORM_SCHEMAS

_DROP_USER_OBJECTS = r"""
do $$
declare
  rec record;
begin
  -- Schemas created by migrations (not Supabase's, not an extension's).
  for rec in
    select n.nspname from pg_catalog.pg_namespace n
    where n.nspname <> all (string_to_array('{system}', ',')) and n.nspname not like 'pg\_%'
      and not exists (select from pg_catalog.pg_depend d
                      where d.classid = 'pg_catalog.pg_namespace'::regclass
                        and d.objid = n.oid and d.deptype = 'e')
  loop
    execute format('drop schema %I cascade', rec.nspname);
  end loop;
  -- Everything in public that no extension owns: relations, then routines, then types.
  for rec in
    select c.oid::regclass::text as name,
           case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                          when 'S' then 'sequence' when 'f' then 'foreign table'
                          else 'table' end as kind
    from pg_catalog.pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
      and not exists (select from pg_catalog.pg_depend d
                      where d.objid = c.oid and d.deptype in ('e', 'i', 'a'))
  loop
    execute format('drop %s if exists %s cascade', rec.kind, rec.name);
  end loop;
  for rec in
    select p.oid::regprocedure::text as name,
           case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate'
                          else 'function' end as kind
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and not exists (select from pg_catalog.pg_depend d
                      where d.objid = p.oid and d.deptype = 'e')
  loop
    execute format('drop %s if exists %s cascade', rec.kind, rec.name);
  end loop;
  for rec in
    select t.oid::regtype::text as name
    from pg_catalog.pg_type t
    where t.typnamespace = 'public'::regnamespace and t.typtype in ('c', 'd', 'e', 'r')
      and (t.typrelid = 0 or (select c.relkind from pg_catalog.pg_class c
                              where c.oid = t.typrelid) = 'c')
      and not exists (select from pg_catalog.pg_depend d
                      where d.objid = t.oid and d.deptype = 'e')
  loop
    execute format('drop type if exists %s cascade', rec.name);
  end loop;
  -- Policies that migrations put on Supabase's own tables (Storage ships none).
  for rec in
    select p.polname, c.oid::regclass::text as tbl
    from pg_catalog.pg_policy p join pg_catalog.pg_class c on c.oid = p.polrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('storage', 'auth')
  loop
    execute format('drop policy %I on %s', rec.polname, rec.tbl);
  end loop;
  -- The history: the next migrate applies every file again.
  drop schema if exists supabase_migrations cascade;
end
$$
"""


def drop_user_objects(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Drop what migrations created in `conn`'s database, in one transaction."""
    with conn.transaction():
        # public is kept (its objects are dropped one by one), as are the platform's.
        kept = ",".join(sorted(PLATFORM_SCHEMAS | {"public"}))
        conn.execute(_DROP_USER_OBJECTS.replace("{system}", kept).encode())
