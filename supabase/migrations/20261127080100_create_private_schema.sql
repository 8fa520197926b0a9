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
