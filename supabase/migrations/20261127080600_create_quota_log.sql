-- public.quota_log: the append-only credit ledger.
--
-- Every balance change is one row written by private.apply_ledger_entry in the same
-- transaction that updates users.credits_remaining. Nobody holds INSERT/UPDATE/DELETE
-- privileges on it: rows are written only by the (security definer) credit functions.
--
-- Additions to the seed: reason is check-constrained to the six ledger reasons with the
-- sign each reason allows; version is the per-user sequence (1, 2, 3, ...) that orders
-- the ledger even within one transaction; total_after tracks credits_total; shortfall
-- records credits an App Store refund could not take back. transaction_id is unique per
-- reason (an IAP purchase and its refund carry the same App Store transaction id), which
-- replaces the seed's plain UNIQUE plus a duplicate index on the same column.
create table public.quota_log (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    job_id uuid references public.video_jobs (job_id) on delete set null,
    change integer not null,
    reason text not null,
    transaction_id text,
    balance_after integer not null,
    total_after integer not null,
    shortfall integer not null default 0,
    version bigint not null,
    created_at timestamptz not null default now(),

    constraint quota_log_reason_check check (reason in (
        'initial_grant', 'video_generation', 'generation_failed_refund',
        'iap_purchase', 'iap_refund', 'admin_adjustment'
    )),
    constraint quota_log_change_sign_check check (
        case reason
            when 'initial_grant' then change > 0
            when 'iap_purchase' then change > 0
            when 'generation_failed_refund' then change > 0
            when 'video_generation' then change < 0
            when 'iap_refund' then change <= 0
            when 'admin_adjustment' then change <> 0
        end
    ),
    constraint quota_log_balance_after_check check (balance_after >= 0),
    constraint quota_log_total_after_check check (total_after >= 0),
    constraint quota_log_shortfall_check
        check (shortfall >= 0 and (shortfall = 0 or reason = 'iap_refund')),
    constraint quota_log_iap_transaction_check
        check (transaction_id is not null or reason not in ('iap_purchase', 'iap_refund')),
    constraint quota_log_version_check check (version > 0),
    constraint quota_log_user_version_key unique (user_id, version)
);

comment on table public.quota_log is
    'Append-only credit ledger; one row per balance change, written by the credit functions.';
comment on column public.quota_log.version is 'Per-user sequence number: 1 for the first row.';
comment on column public.quota_log.shortfall is
    'iap_refund only: credits of the refunded purchase that were already spent.';

-- The seed's indexes (the transaction index is now the per-reason unique one).
create index idx_quota_log_user on public.quota_log (user_id, created_at desc);
create unique index idx_quota_log_transaction on public.quota_log (transaction_id, reason)
    where transaction_id is not null;
-- Every foreign key leads an index (user_id: idx_quota_log_user).
create index idx_quota_log_job_id on public.quota_log (job_id);
-- A job is charged at most once and refunded at most once.
create unique index idx_quota_log_job_reason on public.quota_log (job_id, reason)
    where job_id is not null and reason in ('video_generation', 'generation_failed_refund');

alter table public.quota_log enable row level security;

-- Users read their own credit history.
create policy quota_log_select_own on public.quota_log
    for select to authenticated
    using ((select auth.uid()) = user_id);

revoke all on table public.quota_log from public, anon, authenticated, service_role;
grant select on table public.quota_log to authenticated, service_role;
