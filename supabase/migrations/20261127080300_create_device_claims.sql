-- public.device_claims: a device claims the initial grant once, even after the user row
-- that claimed it is deleted (hence no foreign key to users).
create table public.device_claims (
    device_id text primary key,
    first_user_id uuid not null,
    claimed_at timestamptz not null default now(),
    constraint device_claims_device_id_check check (char_length(device_id) between 1 and 255)
);

comment on table public.device_claims is
    'Devices that claimed the initial credit grant. Kept when the user is deleted.';

alter table public.device_claims enable row level security;

-- No client access (the service role bypasses RLS); an explicit deny documents it.
create policy device_claims_no_client_access on public.device_claims
    for all to anon, authenticated
    using (false)
    with check (false);

revoke all on table public.device_claims from public, anon, authenticated, service_role;
grant select on table public.device_claims to service_role;
