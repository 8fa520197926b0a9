-- Hardening that every later migration relies on.
--
-- Supabase grants anon/authenticated everything on new objects in `public` by default;
-- from now on nothing is exposed unless a migration grants it explicitly. Every
-- migration still revokes and grants per object, so this is a second line of defence,
-- not the only one.
alter default privileges for role postgres in schema public
    revoke all on tables from anon, authenticated;
alter default privileges for role postgres in schema public
    revoke all on sequences from anon, authenticated;
alter default privileges for role postgres in schema public
    revoke all on functions from anon, authenticated;
-- Functions are executable by PUBLIC unless revoked; that default is global, not per schema.
alter default privileges for role postgres
    revoke execute on functions from public;

-- Internal helpers (ledger writes, trigger functions) live outside the API schemas, so
-- PostgREST never exposes them.
create schema if not exists private;
revoke all on schema private from public, anon, authenticated, service_role;
comment on schema private is
    'Internal helpers of the Rendio schema; not exposed through PostgREST, no client access.';

-- Keeps updated_at current on every row update.
-- Caller: triggers only.
create function private.set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;
revoke all on function private.set_updated_at() from public, anon, authenticated, service_role;
comment on function private.set_updated_at() is
    'Trigger function: sets updated_at = now() before update. Caller: triggers only.';
