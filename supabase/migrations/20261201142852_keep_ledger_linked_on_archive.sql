-- Archiving keeps every ledger row linked to its job; archived jobs' files are queued
-- for removal through the Storage API.
--
-- quota_log.job_id referenced video_jobs ON DELETE SET NULL, so archive_old_jobs, which
-- moves a job to video_jobs_archive, cut the link: verify_ledger could no longer tell an
-- archived job's charge or refund from one for no job at all. A foreign key cannot point
-- at "video_jobs or video_jobs_archive", and a supertype table of job ids would add a
-- write to every job to guard against deletes nobody may make (no role has DELETE on
-- either table; jobs leave them only with their user, whose ledger goes too). So:
--   * the foreign key goes and job_id keeps the id for good;
--   * a trigger makes the key's check at write time: the job must exist, live or
--     archived, and belong to the row's user (23503 foreign_key_violation, as before);
--   * rows unlinked by earlier archive runs are linked again;
--   * verify_ledger checks live and archived jobs alike and reports a ledger row whose
--     job is gone (an orphan).
-- The unique index on quota_log (job_id, reason) now also covers archived jobs: each is
-- charged at most once and refunded at most once, archived or not.

alter table public.quota_log drop constraint quota_log_job_id_fkey;
comment on column public.quota_log.job_id is
    'The job charged or refunded, in video_jobs or (once archived) video_jobs_archive.';


-- Relink rows unlinked by earlier archive runs. A charge is written in the transaction
-- that creates its job and a refund in the one that fails it, so the row's created_at
-- equals the job's created_at (charge) or completed_at (refund): now() is the
-- transaction's start. Rows alike in user, reason, time and amount are interchangeable
-- for the ledger, so such ties are paired in order.
with unlinked as (
    select q.id, q.user_id, q.reason, q.created_at as at, abs(q.change) as amount,
           row_number() over (partition by q.user_id, q.reason, q.created_at, abs(q.change)
                              order by q.version) as n
      from public.quota_log q
     where q.job_id is null and q.reason in ('video_generation', 'generation_failed_refund')
),
jobs as (
    select a.job_id, a.user_id, e.reason, e.at, a.credits_used as amount,
           row_number() over (partition by a.user_id, e.reason, e.at, a.credits_used
                              order by a.job_id) as n
      from public.video_jobs_archive a
     cross join lateral (values ('video_generation', a.created_at),
                                ('generation_failed_refund', a.completed_at)) e (reason, at)
     where (e.reason = 'video_generation' or a.status = 'failed')
       and not exists (select 1 from public.quota_log q
                        where q.job_id = a.job_id and q.reason = e.reason)
)
update public.quota_log q
   set job_id = j.job_id
  from unlinked u
  join jobs j using (user_id, reason, at, amount, n)
 where q.id = u.id;


-- The write-time check the foreign key made, surviving the move to the archive.
-- Caller: the trigger below only.
create function private.check_ledger_job()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
    if new.job_id is not null
        and not exists (select 1 from public.video_jobs j
                         where j.job_id = new.job_id and j.user_id = new.user_id)
        and not exists (select 1 from public.video_jobs_archive a
                         where a.job_id = new.job_id and a.user_id = new.user_id) then
        raise exception using errcode = 'foreign_key_violation',
            message = format('quota_log.job_id %s is no job of user %s', new.job_id, new.user_id),
            detail = jsonb_build_object('field', 'job_id', 'reason', 'no such job')::text;
    end if;
    return new;
end;
$$;
revoke all on function private.check_ledger_job() from public, anon, authenticated, service_role;
comment on function private.check_ledger_job() is
    'Trigger: a ledger row''s job exists, live or archived, and is its user''s. Caller: trigger.';

create trigger quota_log_check_job
    before insert or update of job_id, user_id on public.quota_log
    for each row execute function private.check_ledger_job();


-- Storage objects of archived jobs, waiting to be removed through the Storage API (hosted
-- Storage forbids deleting from storage.objects in SQL, and pg_cron has no Storage
-- client). archive_old_jobs queues them; the service role removes them and forgets the
-- rows (`rendio maintenance archive`, AsyncRendioAdmin.archive_old_jobs). Removal is
-- idempotent, so two cleaners at once or a crash between the two steps are harmless.
-- job_id has no foreign key: the files must go even if the job goes with its user.
create table private.storage_removals (
    id bigint generated always as identity primary key,
    bucket text not null,
    path text not null,
    job_id uuid not null,
    queued_at timestamptz not null default now(),

    constraint storage_removals_object_key unique (bucket, path)
);

comment on table private.storage_removals is
    'Storage objects of archived jobs to remove through the Storage API (bucket, stored path).';

revoke all on table private.storage_removals from public, anon, authenticated, service_role;


-- The archive's daily scan reads only finished jobs past the age, not the whole table.
create index idx_video_jobs_finished on public.video_jobs (created_at)
    where status in ('completed', 'failed');


-- Moves finished (completed or failed) jobs created more than p_older_than ago into
-- video_jobs_archive. Their quota_log rows stay linked (job_id is kept); their video and
-- thumbnail paths are queued in private.storage_removals for the Storage API (never
-- removed by SQL). Returns the number of jobs archived.
-- Caller: service_role only (`rendio maintenance`, pg_cron).
create or replace function public.archive_old_jobs(
    p_older_than interval default interval '90 days'
)
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
    ),
    archived as (
        insert into public.video_jobs_archive (
            job_id, user_id, model_id, status, credits_used, created_at, completed_at, job
        )
        select m.job_id, m.user_id, m.model_id, m.status, m.credits_used, m.created_at,
               m.completed_at, to_jsonb(m)
          from moved m
        returning 1
    ),
    queued as (
        insert into private.storage_removals (bucket, path, job_id)
        select f.bucket, f.path, m.job_id
          from moved m
         cross join lateral (values ('videos', m.video_url),
                                    ('thumbnails', m.thumbnail_url)) f (bucket, path)
         where f.path <> ''
        on conflict on constraint storage_removals_object_key do nothing
    )
    select count(*) into v_count from archived;
    return v_count;
end;
$$;
comment on function public.archive_old_jobs(interval) is
    'Moves finished jobs older than p_older_than to the archive, queues their files. Caller: service_role, pg_cron.';


-- Up to p_limit (1-1000) queued Storage objects of archived jobs, oldest first.
-- Caller: service_role only (the archive step of `rendio maintenance`).
create function public.pending_storage_removals(p_limit integer default 1000)
returns table (id bigint, bucket text, path text, job_id uuid)
language sql
stable
security definer
set search_path = ''
as $$
    select r.id, r.bucket, r.path, r.job_id
      from private.storage_removals r
     order by r.id
     limit least(greatest(coalesce(p_limit, 1000), 1), 1000);
$$;
revoke all on function public.pending_storage_removals(integer) from public, anon, authenticated;
grant execute on function public.pending_storage_removals(integer) to service_role;
comment on function public.pending_storage_removals(integer) is
    'Queued Storage objects of archived jobs, oldest first. Caller: service_role.';


-- Forgets queued Storage objects once the Storage API removed them. Returns the count.
-- Caller: service_role only (the archive step of `rendio maintenance`).
create function public.forget_storage_removals(p_ids bigint[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    delete from private.storage_removals r where r.id = any(p_ids);
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;
revoke all on function public.forget_storage_removals(bigint[]) from public, anon, authenticated;
grant execute on function public.forget_storage_removals(bigint[]) to service_role;
comment on function public.forget_storage_removals(bigint[]) is
    'Drops queued Storage objects the Storage API removed. Caller: service_role.';


-- verify_ledger(), as before, plus: the per-job checks cover archived jobs too, and a
-- ledger row whose job is neither live nor archived (or is another user's), or a refund
-- with no job, is reported as ledger_job_exists.
-- Caller: service_role only (tests, monitoring, RendioAdmin.verify_ledger).
create or replace function public.verify_ledger()
returns table (user_id uuid, invariant text, detail text)
language sql
stable
security definer
set search_path = ''
as $$
    with entries as (
        select q.*,
               case
                   when q.reason in ('initial_grant', 'iap_purchase') then q.change
                   when q.reason = 'admin_adjustment' and q.change > 0 then q.change
                   else 0
               end as earned,
               lag(q.balance_after) over w as prev_balance,
               lag(q.total_after) over w as prev_total,
               row_number() over w as position
          from public.quota_log q
        window w as (partition by q.user_id order by q.version)
    ),
    sums as (
        select e.user_id,
               sum(e.change)::bigint as balance_sum,
               sum(e.earned)::bigint as earned_sum,
               count(*) as entry_count
          from entries e
         group by e.user_id
    ),
    jobs as (
        select j.job_id, j.user_id, j.status, j.credits_used from public.video_jobs j
        union all
        select a.job_id, a.user_id, a.status, a.credits_used from public.video_jobs_archive a
    )
    select v.user_id, v.invariant, v.detail
      from (
        select u.id as user_id, 'balance_non_negative' as invariant,
               format('credits_remaining = %s', u.credits_remaining) as detail
          from public.users u
         where u.credits_remaining < 0
        union all
        select u.id, 'balance_equals_ledger_sum',
               format('credits_remaining = %s, sum(change) = %s',
                      u.credits_remaining, coalesce(s.balance_sum, 0))
          from public.users u left join sums s on s.user_id = u.id
         where u.credits_remaining <> coalesce(s.balance_sum, 0)
        union all
        select u.id, 'credits_total_equals_earnings',
               format('credits_total = %s, earned = %s', u.credits_total, coalesce(s.earned_sum, 0))
          from public.users u left join sums s on s.user_id = u.id
         where u.credits_total <> coalesce(s.earned_sum, 0)
        union all
        select u.id, 'ledger_version_equals_entry_count',
               format('ledger_version = %s, entries = %s', u.ledger_version, coalesce(s.entry_count, 0))
          from public.users u left join sums s on s.user_id = u.id
         where u.ledger_version <> coalesce(s.entry_count, 0)
        union all
        select e.user_id, 'versions_consecutive',
               format('entry %s has version %s at position %s', e.id, e.version, e.position)
          from entries e
         where e.version <> e.position
        union all
        select e.user_id, 'balance_after_chain',
               format('version %s: balance_after %s <> previous %s + change %s',
                      e.version, e.balance_after, coalesce(e.prev_balance, 0), e.change)
          from entries e
         where e.balance_after <> coalesce(e.prev_balance, 0) + e.change
        union all
        select e.user_id, 'credits_total_never_decreases',
               format('version %s: total_after %s <> previous %s + earned %s',
                      e.version, e.total_after, coalesce(e.prev_total, 0), e.earned)
          from entries e
         where e.total_after <> coalesce(e.prev_total, 0) + e.earned
        union all
        select (array_agg(q.user_id))[1], 'iap_credited_once',
               format('transaction %s credited %s times', q.transaction_id, count(*))
          from public.quota_log q
         where q.reason = 'iap_purchase'
         group by q.transaction_id
        having count(*) > 1
        union all
        select r.user_id, 'iap_refund_matches_purchase',
               format('refund of %s removed %s + shortfall %s, purchase %s',
                      r.transaction_id, -r.change, r.shortfall, p.change)
          from public.quota_log r
          left join public.quota_log p
            on p.transaction_id = r.transaction_id and p.reason = 'iap_purchase'
           and p.user_id = r.user_id
         where r.reason = 'iap_refund'
           and (p.id is null or -r.change + r.shortfall <> p.change)
        union all
        select q.user_id, 'ledger_job_exists',
               case when q.job_id is null
                    then format('%s %s (version %s) names no job', q.reason, q.change, q.version)
                    else format('%s %s (version %s) for job %s: no such job of this user, '
                                'live or archived', q.reason, q.change, q.version, q.job_id)
               end
          from public.quota_log q
          left join jobs j on j.job_id = q.job_id and j.user_id = q.user_id
         where (q.job_id is not null and j.job_id is null)
            or (q.job_id is null and q.reason = 'generation_failed_refund')
        union all
        select (array_agg(q.user_id))[1], 'job_refunded_at_most_once',
               format('job %s refunded %s times', q.job_id, count(*))
          from public.quota_log q
         where q.reason = 'generation_failed_refund' and q.job_id is not null
         group by q.job_id
        having count(*) > 1
        union all
        select (array_agg(q.user_id))[1], 'job_charged_at_most_once',
               format('job %s charged %s times', q.job_id, count(*))
          from public.quota_log q
         where q.reason = 'video_generation' and q.job_id is not null
         group by q.job_id
        having count(*) > 1
        union all
        select j.user_id, 'job_charge_matches_ledger',
               format('job %s credits_used %s, charged %s', j.job_id, j.credits_used,
                      coalesce(-c.change, 0))
          from jobs j
          left join public.quota_log c
            on c.job_id = j.job_id and c.reason = 'video_generation'
         where coalesce(-c.change, 0) <> j.credits_used
        union all
        select j.user_id, 'refund_only_for_failed_job',
               format('job %s (%s, credits_used %s) refunded %s',
                      j.job_id, j.status, j.credits_used, r.change)
          from jobs j
          join public.quota_log r
            on r.job_id = j.job_id and r.reason = 'generation_failed_refund'
         where j.status <> 'failed' or r.change <> j.credits_used
        union all
        select j.user_id, 'failed_job_refunded',
               format('failed job %s (credits_used %s) has no refund', j.job_id, j.credits_used)
          from jobs j
         where j.status = 'failed' and j.credits_used > 0
           and not exists (
               select 1 from public.quota_log r
                where r.job_id = j.job_id and r.reason = 'generation_failed_refund')
      ) v
     order by v.user_id, v.invariant, v.detail;
$$;
comment on function public.verify_ledger() is
    'One row per violated ledger invariant, live and archived jobs alike; empty when all hold. Caller: service_role.';
