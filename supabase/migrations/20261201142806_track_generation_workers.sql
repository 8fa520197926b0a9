-- Generation workers: a heartbeat row per worker, and leases a worker renews while it
-- finishes a job or releases on a graceful stop.
--
-- Workers are stateless and run anywhere against the same project, so the database is
-- the one place that sees all of them. A worker writes its row through
-- record_worker_heartbeat every few seconds; a row whose last_seen_at is older than a
-- few intervals is a dead worker (kill -9 writes no goodbye), a row with stopped_at
-- stopped cleanly. Rows silent for a day are deleted by the next heartbeat of any
-- worker, so the table stays as small as the fleet.
--
-- Errors: PT400 invalid_request {"field", "reason"}.

create table public.worker_heartbeats (
    worker_id text primary key,
    hostname text not null,
    pid integer not null,
    concurrency integer not null,
    in_flight integer not null default 0,
    jobs_completed bigint not null default 0,
    jobs_failed bigint not null default 0,
    started_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    stopped_at timestamptz,

    constraint worker_heartbeats_worker_id_check check (char_length(worker_id) between 1 and 200),
    constraint worker_heartbeats_hostname_check check (char_length(hostname) between 1 and 255),
    constraint worker_heartbeats_counts_check
        check (pid >= 0 and concurrency >= 1 and in_flight >= 0
               and jobs_completed >= 0 and jobs_failed >= 0)
);

comment on table public.worker_heartbeats is
    'One row per generation worker: where it runs and when it was last seen. Service role only.';

-- The purge of silent rows and "who is alive" both read by last_seen_at.
create index idx_worker_heartbeats_last_seen on public.worker_heartbeats (last_seen_at);

alter table public.worker_heartbeats enable row level security;

-- No client access (the service role bypasses RLS); an explicit deny documents it.
create policy worker_heartbeats_no_client_access on public.worker_heartbeats
    for all to anon, authenticated
    using (false)
    with check (false);

revoke all on table public.worker_heartbeats from public, anon, authenticated, service_role;
grant select on table public.worker_heartbeats to service_role;


-- Records that worker p_worker is alive (or, with p_stopped, that it stopped cleanly):
-- inserts or updates its row with its host, pid, concurrency and counters, then deletes
-- rows not seen for a day. Returns nothing.
-- Caller: service_role only (generation workers).
create function public.record_worker_heartbeat(
    p_worker text,
    p_hostname text,
    p_pid integer,
    p_concurrency integer,
    p_in_flight integer default 0,
    p_jobs_completed bigint default 0,
    p_jobs_failed bigint default 0,
    p_stopped boolean default false
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_worker is null or char_length(p_worker) not between 1 and 200
        or p_hostname is null or char_length(p_hostname) not between 1 and 255 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'worker/hostname',
                'reason', 'worker 1-200 chars, hostname 1-255 chars')::text;
    end if;
    if p_pid is null or p_pid < 0 or p_concurrency is null or p_concurrency < 1
        or coalesce(p_in_flight, 0) < 0 or coalesce(p_jobs_completed, 0) < 0
        or coalesce(p_jobs_failed, 0) < 0 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'pid/concurrency/counters',
                'reason', 'pid >= 0, concurrency >= 1, counters >= 0')::text;
    end if;
    insert into public.worker_heartbeats (
        worker_id, hostname, pid, concurrency, in_flight, jobs_completed, jobs_failed,
        stopped_at)
    values (
        p_worker, p_hostname, p_pid, p_concurrency, coalesce(p_in_flight, 0),
        coalesce(p_jobs_completed, 0), coalesce(p_jobs_failed, 0),
        case when p_stopped then now() end)
    on conflict (worker_id) do update
       set hostname = excluded.hostname,
           pid = excluded.pid,
           concurrency = excluded.concurrency,
           in_flight = excluded.in_flight,
           jobs_completed = excluded.jobs_completed,
           jobs_failed = excluded.jobs_failed,
           last_seen_at = now(),
           stopped_at = excluded.stopped_at;
    delete from public.worker_heartbeats h where h.last_seen_at < now() - interval '1 day';
end;
$$;
revoke all on function public.record_worker_heartbeat(
    text, text, integer, integer, integer, bigint, bigint, boolean)
    from public, anon, authenticated;
grant execute on function public.record_worker_heartbeat(
    text, text, integer, integer, integer, bigint, bigint, boolean)
    to service_role;
comment on function public.record_worker_heartbeat(
    text, text, integer, integer, integer, bigint, bigint, boolean) is
    'Upserts a worker''s heartbeat row and purges rows silent for a day. Caller: service_role.';


-- Gives up worker p_worker's lease on an unfinished job (a graceful stop), so another
-- worker or poller may take it at once instead of after the lease expires. A pending
-- job's claim is not counted against max_job_attempts: it was never submitted.
-- Returns true if the lease was released, false if p_worker did not hold it (lost, or
-- the job is finished).
-- Caller: service_role only (generation workers).
create function public.release_job_lease(p_job_id uuid, p_worker text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    update public.video_jobs j
       set lease_owner = null,
           lease_expires_at = null,
           attempts = case when j.status = 'pending' then greatest(j.attempts - 1, 0)
                           else j.attempts end
     where j.job_id = p_job_id
       and j.lease_owner = p_worker
       and j.status in ('pending', 'processing');
    return found;
end;
$$;
revoke all on function public.release_job_lease(uuid, text) from public, anon, authenticated;
grant execute on function public.release_job_lease(uuid, text) to service_role;
comment on function public.release_job_lease(uuid, text) is
    'Releases a worker''s lease on an unfinished job (graceful stop). Caller: service_role.';


-- Sets the lease worker p_worker holds on an unfinished job to end p_lease from now: a
-- poller that found the provider done keeps the job while it downloads and uploads the
-- video, instead of other pollers taking it when the short poll lease ends.
-- Returns true if p_worker held the lease (it is renewed), false otherwise.
-- Caller: service_role only (generation workers).
create function public.renew_job_lease(p_job_id uuid, p_worker text, p_lease interval)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_lease is null or p_lease <= interval '0' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'lease', 'reason', 'must be > 0')::text;
    end if;
    update public.video_jobs j
       set lease_expires_at = now() + p_lease
     where j.job_id = p_job_id
       and j.lease_owner = p_worker
       and j.status in ('pending', 'processing');
    return found;
end;
$$;
revoke all on function public.renew_job_lease(uuid, text, interval)
    from public, anon, authenticated;
grant execute on function public.renew_job_lease(uuid, text, interval) to service_role;
comment on function public.renew_job_lease(uuid, text, interval) is
    'Renews a worker''s lease on an unfinished job for p_lease. Caller: service_role.';
