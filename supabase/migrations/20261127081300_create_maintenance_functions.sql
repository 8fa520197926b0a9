-- Maintenance, runnable from the CLI and schedulable with pg_cron, e.g.
--   select cron.schedule('fail-stuck-jobs', '*/5 * * * *',
--                        $$select public.fail_stuck_jobs(interval '2 hours')$$);

-- Fails and refunds unfinished jobs that will not finish: past their deadline_at,
-- created more than p_older_than ago, or pending after max_job_attempts claims with no
-- live lease. Jobs locked right now by a worker are skipped (next run gets them).
-- Sweepers run one at a time (a transaction advisory lock), so two of them (pg_cron and
-- the CLI, say) never take the same users in opposite orders; workers are unaffected.
-- p_older_than must be > 0 (PT400 invalid_request otherwise).
-- Returns the number of jobs failed.
-- Caller: service_role only (sweeper, `rendio` CLI, pg_cron).
create function public.fail_stuck_jobs(p_older_than interval default interval '2 hours')
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_job record;
    v_count integer := 0;
begin
    if p_older_than is null or p_older_than <= interval '0' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'older_than', 'reason', 'must be > 0')::text;
    end if;
    perform pg_advisory_xact_lock(hashtextextended('rendio.fail_stuck_jobs', 0));
    for v_job in
        select j.job_id,
               case
                   when j.deadline_at <= now() then 'deadline_exceeded'
                   when j.created_at < now() - p_older_than then 'deadline_exceeded'
                   else 'too_many_attempts'
               end as reason
          from public.video_jobs j
         where j.status in ('pending', 'processing')
           and (j.deadline_at <= now()
                or j.created_at < now() - p_older_than
                or (j.status = 'pending'
                    and j.attempts >= private.max_job_attempts()
                    and (j.lease_expires_at is null or j.lease_expires_at < now())))
         order by j.created_at
           for update skip locked
    loop
        perform private.fail_locked_job(v_job.job_id, v_job.reason);
        v_count := v_count + 1;
    end loop;
    return v_count;
end;
$$;
revoke all on function public.fail_stuck_jobs(interval) from public, anon, authenticated;
grant execute on function public.fail_stuck_jobs(interval) to service_role;
comment on function public.fail_stuck_jobs(interval) is
    'Fails and refunds jobs past their deadline or claimed too often. Caller: service_role, pg_cron.';


-- Deletes idempotency keys past expires_at (24 hours after first use). Returns the count.
-- Caller: service_role only (`rendio` CLI, pg_cron).
create function public.purge_expired_idempotency_keys()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    delete from public.idempotency_log k where k.expires_at <= now();
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;
revoke all on function public.purge_expired_idempotency_keys() from public, anon, authenticated;
grant execute on function public.purge_expired_idempotency_keys() to service_role;
comment on function public.purge_expired_idempotency_keys() is
    'Deletes expired idempotency keys. Caller: service_role, pg_cron.';


-- Moves finished (completed or failed) jobs created more than p_older_than ago into
-- video_jobs_archive. Their quota_log rows stay (job_id becomes null by the foreign
-- key); their Storage files stay too (files are removed through the Storage API, never
-- by SQL). Returns the number of jobs archived.
-- Caller: service_role only (`rendio` CLI, pg_cron).
create function public.archive_old_jobs(p_older_than interval default interval '90 days')
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_older_than is null or p_older_than < interval '0' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'older_than', 'reason', 'must be >= 0')::text;
    end if;
    with moved as (
        delete from public.video_jobs j
         where j.status in ('completed', 'failed')
           and j.created_at < now() - p_older_than
        returning j.*
    )
    insert into public.video_jobs_archive (
        job_id, user_id, model_id, status, credits_used, created_at, completed_at, job
    )
    select m.job_id, m.user_id, m.model_id, m.status, m.credits_used, m.created_at,
           m.completed_at, to_jsonb(m)
      from moved m;
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;
revoke all on function public.archive_old_jobs(interval) from public, anon, authenticated;
grant execute on function public.archive_old_jobs(interval) to service_role;
comment on function public.archive_old_jobs(interval) is
    'Moves finished jobs older than p_older_than to video_jobs_archive. Caller: service_role, pg_cron.';
