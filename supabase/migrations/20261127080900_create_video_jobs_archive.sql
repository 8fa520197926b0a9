-- public.video_jobs_archive: finished jobs older than 90 days, moved here by
-- archive_old_jobs(). The full row is kept as jsonb so the archive survives later
-- changes of video_jobs' columns; the columns queried most are copied out.
create table public.video_jobs_archive (
    job_id uuid primary key,
    user_id uuid not null references public.users (id) on delete cascade,
    model_id uuid not null,
    status text not null,
    credits_used integer not null,
    created_at timestamptz not null,
    completed_at timestamptz,
    archived_at timestamptz not null default now(),
    job jsonb not null,

    constraint video_jobs_archive_status_check check (status in ('completed', 'failed')),
    constraint video_jobs_archive_job_check check (jsonb_typeof(job) = 'object')
);

comment on table public.video_jobs_archive is
    'Archived finished jobs (full row in job). Written only by archive_old_jobs().';

-- The per-user listing; also indexes the foreign key.
create index idx_video_jobs_archive_user_created
    on public.video_jobs_archive (user_id, created_at desc);

alter table public.video_jobs_archive enable row level security;

-- No client access (the service role bypasses RLS).
create policy video_jobs_archive_no_client_access on public.video_jobs_archive
    for all to anon, authenticated
    using (false)
    with check (false);

revoke all on table public.video_jobs_archive from public, anon, authenticated, service_role;
grant select on table public.video_jobs_archive to service_role;
