-- A per-user limit on jobs in flight (pending + processing), default 3.
--
-- Enforced by a trigger on the one insert that creates jobs (create_video_job), which
-- already holds the user's row lock (private.lock_user_balance), so concurrent requests
-- of one user are counted one after the other. The exception rolls the whole request
-- back: nothing is charged and the idempotency key stays unused, so the client may
-- retry with the same key after Retry-After.
--
-- Error: PT429 rate_limited {limit, in_flight, retry_after (seconds)}.

alter table public.users
    add column max_jobs_in_flight integer not null default 3
        constraint users_max_jobs_in_flight_check check (max_jobs_in_flight >= 0);
comment on column public.users.max_jobs_in_flight is
    'Jobs a user may have pending or processing at once; set by the service role only.';

-- Seconds a client is told to wait: a queued Veo job usually leaves the queue within it.
create function private.enforce_jobs_in_flight()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_limit integer;
    v_in_flight integer;
begin
    select u.max_jobs_in_flight into v_limit from public.users u where u.id = new.user_id;
    select count(*) into v_in_flight
      from public.video_jobs j
     where j.user_id = new.user_id and j.status in ('pending', 'processing');
    if v_in_flight >= v_limit then
        raise exception using errcode = 'PT429', message = 'rate_limited',
            detail = jsonb_build_object('limit', v_limit, 'in_flight', v_in_flight,
                                        'retry_after', 30)::text;
    end if;
    return new;
end;
$$;
revoke all on function private.enforce_jobs_in_flight() from public, anon, authenticated;
comment on function private.enforce_jobs_in_flight() is
    'Trigger: refuses a new job beyond users.max_jobs_in_flight. Caller: the trigger only.';

create trigger enforce_jobs_in_flight
    before insert on public.video_jobs
    for each row execute function private.enforce_jobs_in_flight();
