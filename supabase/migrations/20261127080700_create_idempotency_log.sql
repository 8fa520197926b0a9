-- public.idempotency_log: Stripe-style idempotency keys.
--
-- Deviations from the seed: keys are scoped per user, so the primary key is
-- (user_id, idempotency_key) and user_id is NOT NULL (a key used by another user never
-- returns that user's response); request_hash is the request fingerprint (hash of
-- method, path and body) that detects reuse with a different request; state is
-- in_progress until the response is stored.
create table public.idempotency_log (
    user_id uuid not null references public.users (id) on delete cascade,
    idempotency_key uuid not null,
    request_hash text not null,
    state text not null default 'in_progress',
    job_id uuid references public.video_jobs (job_id) on delete set null,
    operation_type text not null,
    response_data jsonb,
    status_code integer,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '24 hours',

    primary key (user_id, idempotency_key),
    constraint idempotency_log_state_check check (state in ('in_progress', 'completed')),
    constraint idempotency_log_request_hash_check
        check (char_length(request_hash) between 1 and 256),
    constraint idempotency_log_completed_check check (
        state <> 'completed' or (response_data is not null and status_code is not null)
    ),
    constraint idempotency_log_status_code_check check (status_code between 100 and 599)
);

comment on table public.idempotency_log is
    'Idempotency keys per user; a completed key replays its stored response for 24 hours.';

-- The seed's indexes.
create index idx_idempotency_user on public.idempotency_log (user_id, created_at);
create index idx_idempotency_expires on public.idempotency_log (expires_at);
-- Every foreign key leads an index (user_id: the primary key).
create index idx_idempotency_log_job_id on public.idempotency_log (job_id);

create trigger idempotency_log_set_updated_at
    before update on public.idempotency_log
    for each row execute function private.set_updated_at();

alter table public.idempotency_log enable row level security;

-- Never visible or writable by clients (the service role bypasses RLS).
create policy idempotency_log_no_client_access on public.idempotency_log
    for all to anon, authenticated
    using (false)
    with check (false);

revoke all on table public.idempotency_log from public, anon, authenticated, service_role;
grant select, delete on table public.idempotency_log to service_role;
