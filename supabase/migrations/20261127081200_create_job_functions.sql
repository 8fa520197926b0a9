-- Job lifecycle functions: workers claim, submit, complete or fail jobs.
-- Terminal states (completed, failed) are final; every function is idempotent.
--
-- Lease protocol: claim_pending_jobs leases pending jobs to a worker (FOR UPDATE SKIP
-- LOCKED, so any number of workers on any number of machines can run); the worker
-- submits the job to the provider and calls mark_job_processing, which succeeds only
-- while it still owns the lease. A worker that crashes before that leaves a pending job
-- whose lease expires; it is claimed again (attempts counts the claims) and failed with
-- a refund by fail_stuck_jobs after private.max_job_attempts() claims. Pollers lease
-- processing jobs with claim_processing_jobs. Completion: complete_video_job or
-- fail_video_job, by webhook or poller, whichever comes first.

-- How many times a pending job may be claimed before the sweeper gives up on it.
-- Caller: the job functions only.
create function private.max_job_attempts()
returns integer
language sql
immutable
security invoker
set search_path = ''
as $$ select 5 $$;
revoke all on function private.max_job_attempts() from public, anon, authenticated, service_role;
comment on function private.max_job_attempts() is
    'Claims of a pending job before the sweeper fails it. Caller: job functions only.';


-- Fails a job the caller has locked and refunds its credits, exactly once (the job is
-- not terminal; the unique index on quota_log (job_id, reason) is the backstop).
-- Returns the credits refunded. Caller: fail_video_job and fail_stuck_jobs only.
create function private.fail_locked_job(p_job_id uuid, p_error text)
returns integer
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_user_id uuid;
    v_credits integer;
begin
    update public.video_jobs j
       set status = 'failed',
           error_message = left(coalesce(nullif(p_error, ''), 'unknown error'), 2000),
           completed_at = now(),
           lease_owner = null,
           lease_expires_at = null
     where j.job_id = p_job_id and j.status in ('pending', 'processing')
    returning j.user_id, j.credits_used into v_user_id, v_credits;
    if not found then
        return 0;
    end if;
    if v_credits > 0 then
        perform private.apply_ledger_entry(
            v_user_id, v_credits, 'generation_failed_refund', p_job_id);
    end if;
    return v_credits;
end;
$$;
revoke all on function private.fail_locked_job(uuid, text)
    from public, anon, authenticated, service_role;
comment on function private.fail_locked_job(uuid, text) is
    'Marks a locked unfinished job failed and refunds it once. Caller: job functions only.';


-- Leases up to p_limit pending jobs (oldest first) to worker p_worker for p_lease.
-- Skips jobs leased to others, past their deadline or claimed too often (the sweeper
-- fails those). Returns the leased jobs.
-- Caller: service_role only (generation workers).
create function public.claim_pending_jobs(
    p_worker text,
    p_limit integer,
    p_lease interval default interval '5 minutes'
)
returns setof public.video_jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_worker is null or char_length(p_worker) not between 1 and 200
        or p_limit is null or p_limit < 1 or p_lease is null or p_lease <= interval '0' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'worker/limit/lease',
                'reason', 'worker 1-200 chars, limit >= 1, lease > 0')::text;
    end if;
    return query
    with picked as (
        select j.job_id
          from public.video_jobs j
         where j.status = 'pending'
           and (j.lease_expires_at is null or j.lease_expires_at < now())
           and j.deadline_at > now()
           and j.attempts < private.max_job_attempts()
         order by j.created_at
         limit least(p_limit, 1000)
           for update skip locked
    )
    update public.video_jobs j
       set lease_owner = p_worker,
           lease_expires_at = now() + p_lease,
           attempts = j.attempts + 1
      from picked
     where j.job_id = picked.job_id
    returning j.*;
end;
$$;
revoke all on function public.claim_pending_jobs(text, integer, interval)
    from public, anon, authenticated;
grant execute on function public.claim_pending_jobs(text, integer, interval) to service_role;
comment on function public.claim_pending_jobs(text, integer, interval) is
    'Leases pending jobs to a worker (SKIP LOCKED). Caller: service_role (workers).';


-- Leases up to p_limit processing jobs (least recently leased first) to poller
-- p_worker, for providers without webhooks or webhooks that never came.
-- Caller: service_role only (pollers).
create function public.claim_processing_jobs(
    p_worker text,
    p_limit integer,
    p_lease interval default interval '1 minute'
)
returns setof public.video_jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_worker is null or char_length(p_worker) not between 1 and 200
        or p_limit is null or p_limit < 1 or p_lease is null or p_lease <= interval '0' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'worker/limit/lease',
                'reason', 'worker 1-200 chars, limit >= 1, lease > 0')::text;
    end if;
    return query
    with picked as (
        select j.job_id
          from public.video_jobs j
         where j.status = 'processing'
           and (j.lease_expires_at is null or j.lease_expires_at < now())
         order by coalesce(j.lease_expires_at, j.started_at, j.created_at)
         limit least(p_limit, 1000)
           for update skip locked
    )
    update public.video_jobs j
       set lease_owner = p_worker,
           lease_expires_at = now() + p_lease
      from picked
     where j.job_id = picked.job_id
    returning j.*;
end;
$$;
revoke all on function public.claim_processing_jobs(text, integer, interval)
    from public, anon, authenticated;
grant execute on function public.claim_processing_jobs(text, integer, interval) to service_role;
comment on function public.claim_processing_jobs(text, integer, interval) is
    'Leases processing jobs to a poller (SKIP LOCKED). Caller: service_role (pollers).';


-- Records the provider's answer to a submission and moves the job to processing:
-- provider name, its request id and the status/response/cancel URLs it returned.
-- Succeeds (true) only if the job is still pending and leased to p_worker; false means
-- the lease was lost (another worker owns the job) or the job was already finished.
-- The lease is released so pollers can pick the job up.
-- Caller: service_role only (generation workers).
create function public.mark_job_processing(
    p_job_id uuid,
    p_worker text,
    p_provider text,
    p_provider_job_id text,
    p_status_url text default null,
    p_response_url text default null,
    p_cancel_url text default null
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_provider is null or p_provider_job_id is null or p_provider_job_id = '' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'provider_job_id', 'reason', 'required')::text;
    end if;
    update public.video_jobs j
       set status = 'processing',
           provider = p_provider,
           provider_job_id = p_provider_job_id,
           provider_status_url = p_status_url,
           provider_response_url = p_response_url,
           provider_cancel_url = p_cancel_url,
           started_at = now(),
           lease_owner = null,
           lease_expires_at = null
     where j.job_id = p_job_id
       and j.status = 'pending'
       and j.lease_owner = p_worker;
    return found;
end;
$$;
revoke all on function public.mark_job_processing(uuid, text, text, text, text, text, text)
    from public, anon, authenticated;
grant execute on function public.mark_job_processing(uuid, text, text, text, text, text, text)
    to service_role;
comment on function public.mark_job_processing(uuid, text, text, text, text, text, text) is
    'Stores the provider request and sets processing, if the worker holds the lease. Caller: service_role.';


-- Marks an unfinished job completed with the Storage paths of its video and thumbnail
-- (videos/{user_id}/{job_id}.mp4, thumbnails/{user_id}/{job_id}.jpg). Returns true if
-- the job changed, false if it was already terminal (completed or failed: final).
-- Raises PT404 not_found for an unknown job.
-- Caller: service_role only (webhook handler, poller).
create function public.complete_video_job(
    p_job_id uuid,
    p_video_path text,
    p_thumbnail_path text default null
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_video_path is null or p_video_path = '' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'video_path', 'reason', 'required')::text;
    end if;
    update public.video_jobs j
       set status = 'completed',
           video_url = p_video_path,
           thumbnail_url = p_thumbnail_path,
           error_message = null,
           completed_at = now(),
           lease_owner = null,
           lease_expires_at = null
     where j.job_id = p_job_id and j.status in ('pending', 'processing');
    if found then
        return true;
    end if;
    if not exists (select 1 from public.video_jobs j where j.job_id = p_job_id) then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'job', 'id', p_job_id)::text;
    end if;
    return false;
end;
$$;
revoke all on function public.complete_video_job(uuid, text, text)
    from public, anon, authenticated;
grant execute on function public.complete_video_job(uuid, text, text) to service_role;
comment on function public.complete_video_job(uuid, text, text) is
    'Completes an unfinished job with its Storage paths; terminal jobs stay. Caller: service_role.';


-- Fails an unfinished job with p_error and refunds its credits exactly once. Terminal
-- jobs are left as they are (idempotent: a repeated call refunds nothing).
-- Returns {failed, status, credits_refunded, credits_remaining}; failed is false when
-- the job was already terminal. Raises PT404 not_found for an unknown job.
-- Caller: service_role only (workers, webhook handler, poller, admin).
create function public.fail_video_job(p_job_id uuid, p_error text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_status text;
    v_user_id uuid;
    v_refunded integer;
begin
    select j.status, j.user_id into v_status, v_user_id
      from public.video_jobs j
     where j.job_id = p_job_id
       for update;
    if not found then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'job', 'id', p_job_id)::text;
    end if;
    if v_status in ('completed', 'failed') then
        return jsonb_build_object(
            'failed', false, 'status', v_status, 'credits_refunded', 0,
            'credits_remaining',
            (select u.credits_remaining from public.users u where u.id = v_user_id));
    end if;

    v_refunded := private.fail_locked_job(p_job_id, p_error);
    return jsonb_build_object(
        'failed', true, 'status', 'failed', 'credits_refunded', v_refunded,
        'credits_remaining',
        (select u.credits_remaining from public.users u where u.id = v_user_id));
end;
$$;
revoke all on function public.fail_video_job(uuid, text) from public, anon, authenticated;
grant execute on function public.fail_video_job(uuid, text) to service_role;
comment on function public.fail_video_job(uuid, text) is
    'Fails an unfinished job and refunds it exactly once; idempotent. Caller: service_role.';
