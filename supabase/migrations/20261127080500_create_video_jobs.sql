-- public.video_jobs: one row per generation request.
--
-- Additions to the seed: soft delete (deleted_at), provider bookkeeping
-- (provider, the status/response/cancel URLs the provider returned, never rebuilt),
-- worker leases (lease_owner, lease_expires_at, attempts), a deadline after which the
-- sweeper fails and refunds the job, and updated_at. video_url / thumbnail_url hold
-- Storage paths (videos/{user_id}/{job_id}.mp4), not public URLs.
create table public.video_jobs (
    job_id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    model_id uuid not null references public.models (id),
    prompt text not null,
    settings jsonb not null default '{}'::jsonb,
    status text not null default 'pending',
    video_url text,
    thumbnail_url text,
    credits_used integer not null,
    error_message text,
    provider text,
    provider_job_id text,
    provider_status_url text,
    provider_response_url text,
    provider_cancel_url text,
    attempts integer not null default 0,
    lease_owner text,
    lease_expires_at timestamptz,
    deadline_at timestamptz not null default now() + interval '1 hour',
    started_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz,
    deleted_at timestamptz,

    constraint video_jobs_status_check
        check (status in ('pending', 'processing', 'completed', 'failed')),
    constraint video_jobs_prompt_check check (char_length(prompt) between 1 and 2000),
    constraint video_jobs_settings_check check (jsonb_typeof(settings) = 'object'),
    constraint video_jobs_credits_used_check check (credits_used >= 0),
    constraint video_jobs_attempts_check check (attempts >= 0),
    constraint video_jobs_terminal_check
        check ((status in ('completed', 'failed')) = (completed_at is not null))
);

comment on table public.video_jobs is
    'Generation jobs. Created only by create_video_job; state changes through the job functions.';
comment on column public.video_jobs.video_url is 'Storage path in bucket videos.';
comment on column public.video_jobs.thumbnail_url is 'Storage path in bucket thumbnails.';

-- The seed's indexes.
create index idx_video_jobs_user on public.video_jobs (user_id, created_at desc);
create index idx_video_jobs_status on public.video_jobs (status);
create index idx_video_jobs_provider on public.video_jobs (provider_job_id);
create index idx_video_jobs_deleted on public.video_jobs (deleted_at) where deleted_at is null;
-- Every foreign key leads an index (user_id: idx_video_jobs_user).
create index idx_video_jobs_model_id on public.video_jobs (model_id);
-- The workers' queue (oldest pending first) and the sweeper's scan of unfinished jobs.
create index idx_video_jobs_pending on public.video_jobs (created_at) where status = 'pending';
create index idx_video_jobs_unfinished on public.video_jobs (deadline_at)
    where status in ('pending', 'processing');

create trigger video_jobs_set_updated_at
    before update on public.video_jobs
    for each row execute function private.set_updated_at();

alter table public.video_jobs enable row level security;

-- Users read their own jobs (soft-deleted ones too; the API filters them out).
create policy video_jobs_select_own on public.video_jobs
    for select to authenticated
    using ((select auth.uid()) = user_id);

-- Users may soft delete their own jobs: the column privilege allows only deleted_at,
-- USING only live rows, WITH CHECK only a non-null deleted_at (no undelete).
create policy video_jobs_soft_delete_own on public.video_jobs
    for update to authenticated
    using ((select auth.uid()) = user_id and deleted_at is null)
    with check ((select auth.uid()) = user_id and deleted_at is not null);

revoke all on table public.video_jobs from public, anon, authenticated, service_role;
grant select on table public.video_jobs to authenticated;
grant update (deleted_at) on table public.video_jobs to authenticated;
-- No INSERT for anyone: jobs are created (and paid for) only by create_video_job, and
-- status changes go through the job functions so that failures are refunded.
-- No DELETE for anyone either, not even the service role: deleting an unfinished job
-- would keep its charge with nothing left to fail and refund (and quota_log.job_id would
-- be nulled, so verify_ledger could not see it). Old jobs leave through
-- archive_old_jobs(), a security definer function, and a user's jobs go with the user
-- (on delete cascade), which needs no grant.
grant select on table public.video_jobs to service_role;
grant update (deleted_at, deadline_at) on table public.video_jobs to service_role;
