-- A purchase refunded before the app redeemed it is never credited.
--
-- Apple may send REFUND (or REVOKE) for a transaction before the app posts it to
-- /update-credits (the app was offline, or the user asked for a refund at once). The
-- notification found no purchase and was recorded as no_purchase, and the later
-- redemption credited the refunded purchase in full. Now add_credits refuses an
-- iap_purchase whose transaction has a REFUND/REVOKE notification on record that no
-- later REFUND_REVERSED undid (by Apple's signedDate): PT422 transaction_revoked
-- {"transaction_id"}. A replay of a purchase credited before its refund still answers
-- already_processed, as the refund was applied to it.
--
-- The two sides serialize on the transaction id (a transaction advisory lock, taken
-- before any user row in both, so the lock order is the same): the redemption and
-- the notification each see what the other committed, whichever comes first.

create function private.lock_app_store_transaction(p_transaction_id text)
returns void
language sql
security invoker
set search_path = ''
as $$
    select pg_advisory_xact_lock(
        hashtextextended('rendio.app_store_transaction:' || p_transaction_id, 0));
$$;
revoke all on function private.lock_app_store_transaction(text)
    from public, anon, authenticated, service_role;
comment on function private.lock_app_store_transaction(text) is
    'Serializes the redemption and the notifications of one App Store transaction.';


-- add_credits looks up a transaction's notifications on every redemption.
create index idx_app_store_notifications_transaction
    on private.app_store_notifications (transaction_id) where transaction_id is not null;


-- The notification side: its row is inserted before it looks for the purchase.
create function private.lock_notified_transaction()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
    perform private.lock_app_store_transaction(new.transaction_id);
    return new;
end;
$$;
revoke all on function private.lock_notified_transaction()
    from public, anon, authenticated, service_role;
comment on function private.lock_notified_transaction() is
    'Trigger: a REFUND/REVOKE/REFUND_REVERSED notification waits for a redemption of its transaction.';

create trigger app_store_notifications_lock_transaction
    before insert on private.app_store_notifications
    for each row
    when (new.transaction_id is not null
          and new.notification_type in ('REFUND', 'REVOKE', 'REFUND_REVERSED'))
    execute function private.lock_notified_transaction();


-- add_credits as before, plus the lock and the refusal for iap_purchase.
create or replace function public.add_credits(
    p_user_id uuid,
    p_amount integer,
    p_reason text,
    p_transaction_id text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_existing public.quota_log;
    v_entry public.quota_log;
    v_total integer;
begin
    if p_reason is null or p_reason not in ('iap_purchase', 'admin_adjustment') then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'reason',
                'reason', 'iap_purchase or admin_adjustment')::text;
    end if;
    if p_amount is null or p_amount <= 0 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'amount', 'reason', 'must be > 0')::text;
    end if;
    if p_reason = 'iap_purchase'
        and (p_transaction_id is null or char_length(p_transaction_id) not between 1 and 255) then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'transaction_id', 'reason', 'required')::text;
    end if;

    if p_reason = 'iap_purchase' then
        perform private.lock_app_store_transaction(p_transaction_id);
    end if;
    -- Serializes purchases of one user, so a replay sees the first call's row.
    perform private.lock_user_balance(p_user_id);

    if p_transaction_id is not null then
        select * into v_existing
          from public.quota_log q
         where q.transaction_id = p_transaction_id and q.reason = p_reason;
        if found then
            if v_existing.user_id <> p_user_id then
                raise exception using errcode = 'PT409', message = 'transaction_already_used',
                    detail = jsonb_build_object('transaction_id', p_transaction_id)::text;
            end if;
            return (
                select jsonb_build_object(
                    'already_processed', true,
                    'credits_remaining', u.credits_remaining,
                    'credits_total', u.credits_total,
                    'entry_id', v_existing.id)
                  from public.users u where u.id = p_user_id
            );
        end if;
    end if;
    if p_reason = 'iap_purchase' and exists (
            select 1 from private.app_store_notifications n
             where n.transaction_id = p_transaction_id
               and n.notification_type in ('REFUND', 'REVOKE')
               and not exists (
                   select 1 from private.app_store_notifications r
                    where r.transaction_id = p_transaction_id
                      and r.notification_type = 'REFUND_REVERSED'
                      and coalesce(r.signed_at, r.received_at)
                          > coalesce(n.signed_at, n.received_at))) then
        raise exception using errcode = 'PT422', message = 'transaction_revoked',
            detail = jsonb_build_object('transaction_id', p_transaction_id)::text;
    end if;

    begin
        v_entry := private.apply_ledger_entry(
            p_user_id, p_amount, p_reason, null, p_transaction_id);
    exception when unique_violation then
        -- Another user's concurrent call won the transaction id.
        raise exception using errcode = 'PT409', message = 'transaction_already_used',
            detail = jsonb_build_object('transaction_id', p_transaction_id)::text;
    end;
    select u.credits_total into v_total from public.users u where u.id = p_user_id;
    return jsonb_build_object(
        'already_processed', false,
        'credits_remaining', v_entry.balance_after,
        'credits_total', v_total,
        'entry_id', v_entry.id);
end;
$$;
comment on function public.add_credits(uuid, integer, text, text) is
    'Adds credits (iap_purchase / admin_adjustment), idempotent per transaction id; refuses a refunded purchase (PT422). Caller: service_role.';
