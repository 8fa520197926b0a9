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
