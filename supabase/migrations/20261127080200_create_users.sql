-- public.users: one row per Supabase Auth user (created by the trigger on auth.users).
--
-- Deviations from the seed, on purpose:
-- * id references auth.users (public.users.id = auth.users.id).
-- * users_identity_check also accepts guests: an anonymous sign-in has neither an email
--   nor (until POST /device/check) a device id, and the row must exist from sign-up on.
-- * The seed's idx_users_device_id / idx_users_apple_sub duplicated the UNIQUE
--   constraints' indexes (a duplicate_index lint); the unique indexes carry those names.
-- * Credits are NOT NULL integers with CHECK constraints; ledger_version counts the
--   user's quota_log rows (the per-user sequence of the ledger).
create table public.users (
    id uuid primary key default gen_random_uuid()
        references auth.users (id) on delete cascade,
    email text,
    device_id text,
    apple_sub text,
    is_guest boolean not null default true,
    tier text not null default 'free',
    credits_remaining integer not null default 0,
    credits_total integer not null default 0,
    initial_grant_claimed boolean not null default false,
    language text not null default 'en',
    theme_preference text not null default 'system',
    ledger_version bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint idx_users_device_id unique (device_id),
    constraint idx_users_apple_sub unique (apple_sub),
    constraint users_tier_check check (tier in ('free', 'premium')),
    constraint users_credits_remaining_check check (credits_remaining >= 0),
    constraint users_credits_total_check check (credits_total >= 0),
    constraint users_ledger_version_check check (ledger_version >= 0),
    constraint users_language_check check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
    constraint users_theme_preference_check
        check (theme_preference in ('light', 'dark', 'system')),
    constraint users_device_id_check check (char_length(device_id) between 1 and 255),
    constraint users_identity_check check (
        is_guest or email is not null or apple_sub is not null or device_id is not null
    )
);

comment on table public.users is
    'App users (= auth.users). Balance columns change only through the credit functions.';
comment on column public.users.credits_total is
    'Lifetime earned credits: initial_grant + iap_purchase + positive admin_adjustment.';
comment on column public.users.ledger_version is
    'Number of quota_log rows of this user; the version of the newest one.';

create trigger users_set_updated_at
    before update on public.users
    for each row execute function private.set_updated_at();

alter table public.users enable row level security;

-- Users read their own row.
create policy users_select_own on public.users
    for select to authenticated
    using ((select auth.uid()) = id);

-- Users update their own row; column privileges limit it to language and theme.
create policy users_update_own on public.users
    for update to authenticated
    using ((select auth.uid()) = id)
    with check ((select auth.uid()) = id);

revoke all on table public.users from public, anon, authenticated, service_role;
grant select on table public.users to authenticated;
grant update (language, theme_preference) on table public.users to authenticated;
-- The service role administers identity columns; balances only move through the ledger
-- functions, so it gets no write privilege on them either.
grant select, delete on table public.users to service_role;
grant insert (id, email, device_id, apple_sub, is_guest, tier, language, theme_preference)
    on table public.users to service_role;
grant update (email, device_id, apple_sub, is_guest, tier, language, theme_preference)
    on table public.users to service_role;
