-- verify_ledger(): checks the ledger invariants for every user and returns one
-- row per violation (empty when all hold). Jobs moved to the archive are no longer
-- linked (their quota_log.job_id is null), so the per-job checks cover live jobs.
-- Caller: service_role only (tests, `rendio db verify`, monitoring).
create function public.verify_ledger()
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
          from public.video_jobs j
          left join public.quota_log c
            on c.job_id = j.job_id and c.reason = 'video_generation'
         where coalesce(-c.change, 0) <> j.credits_used
        union all
        select j.user_id, 'refund_only_for_failed_job',
               format('job %s (%s, credits_used %s) refunded %s',
                      j.job_id, j.status, j.credits_used, r.change)
          from public.video_jobs j
          join public.quota_log r
            on r.job_id = j.job_id and r.reason = 'generation_failed_refund'
         where j.status <> 'failed' or r.change <> j.credits_used
        union all
        select j.user_id, 'failed_job_refunded',
               format('failed job %s (credits_used %s) has no refund', j.job_id, j.credits_used)
          from public.video_jobs j
         where j.status = 'failed' and j.credits_used > 0
           and not exists (
               select 1 from public.quota_log r
                where r.job_id = j.job_id and r.reason = 'generation_failed_refund')
      ) v
     order by v.user_id, v.invariant, v.detail;
$$;
revoke all on function public.verify_ledger() from public, anon, authenticated;
grant execute on function public.verify_ledger() to service_role;
comment on function public.verify_ledger() is
    'One row per violated ledger invariant; empty when all hold. Caller: service_role.';
