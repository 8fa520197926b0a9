-- Lock ordering fixes (deadlocks found under concurrent callers).
--
-- fail_stuck_jobs locked a batch of jobs, then each job's user: two sweepers (pg_cron
-- and the CLI, say) could take the same users in opposite orders. Sweepers now run one
-- at a time (a transaction advisory lock); workers are unaffected.
-- grant_initial_credits locked the caller, then the device's previous holder: two users
-- swapping devices deadlocked. It now takes the device's claim row first (which
-- serialises every call for one device, so the holder cannot change underneath), then
-- the caller's and the holder's rows together in id order.

-- Caller: service_role only (sweeper, `rendio` CLI, pg_cron).
create or replace function public.fail_stuck_jobs(p_older_than interval default interval '2 hours')
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

-- Caller: service_role only (POST /functions/v1/device/check after DeviceCheck).
create or replace function public.grant_initial_credits(p_user_id uuid, p_device_id text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_claimed_by uuid;
    v_new_claim boolean;
    v_user_claimed boolean;
begin
    if p_user_id is null or p_device_id is null
        or char_length(p_device_id) not between 1 and 255 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'device_id', 'reason', 'length 1-255')::text;
    end if;

    if not exists (select 1 from public.users u where u.id = p_user_id) then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'user', 'id', p_user_id)::text;
    end if;

    -- Claim the device, or lock the existing claim (waits for a concurrent claimer).
    insert into public.device_claims (device_id, first_user_id)
    values (p_device_id, p_user_id)
    on conflict (device_id) do nothing;
    v_new_claim := found;
    if not v_new_claim then
        select c.first_user_id into v_claimed_by
          from public.device_claims c
         where c.device_id = p_device_id
           for update;
    end if;

    -- Only calls holding this claim move the device, so its holder is now stable:
    -- lock the caller and the holder in id order.
    perform 1
       from public.users u
      where u.id = p_user_id or u.device_id = p_device_id
      order by u.id
        for update;

    -- Bind the device to this user; a previous holder (e.g. before a reinstall) loses it.
    update public.users u set device_id = null
     where u.device_id = p_device_id and u.id <> p_user_id;
    update public.users u set device_id = p_device_id
     where u.id = p_user_id and u.device_id is distinct from p_device_id;

    select u.initial_grant_claimed into v_user_claimed
      from public.users u where u.id = p_user_id;
    if v_user_claimed or (not v_new_claim and v_claimed_by <> p_user_id) then
        return false;
    end if;

    update public.users u set initial_grant_claimed = true where u.id = p_user_id;
    perform private.apply_ledger_entry(p_user_id, 10, 'initial_grant');
    return true;
end;
$$;
