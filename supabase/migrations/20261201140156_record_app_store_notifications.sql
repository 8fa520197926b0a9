-- App Store Server Notifications V2, each handled once.
--
-- Apple retries a notification until it gets a 2xx (five times over three days) and
-- may deliver one twice, so every notificationUUID is recorded, in the same
-- transaction as what it changed: a repeat is a no-op, and a failure records nothing,
-- so Apple's retry runs it again.
--
-- Errors: PT400 invalid_request {"field", "reason"}.

-- One row per notification received; nobody but the function below reads or writes it.
create table private.app_store_notifications (
    notification_uuid uuid primary key,
    notification_type text not null,
    subtype text,
    transaction_id text,
    -- The purchase's owner (REFUND / REVOKE of a credited transaction), else null.
    user_id uuid,
    -- refunded | already_refunded | no_purchase | acknowledged
    outcome text not null,
    credits_removed integer not null default 0,
    shortfall integer not null default 0,
    signed_at timestamptz,
    received_at timestamptz not null default now(),

    constraint app_store_notifications_type_check
        check (char_length(notification_type) between 1 and 64),
    constraint app_store_notifications_outcome_check
        check (outcome in ('refunded', 'already_refunded', 'no_purchase', 'acknowledged'))
);

comment on table private.app_store_notifications is
    'App Store Server Notifications V2 already handled (by notificationUUID) and their outcome.';

revoke all on table private.app_store_notifications
    from public, anon, authenticated, service_role;


-- Handles one verified notification once. REFUND and REVOKE take back the credits of
-- the purchase p_transaction_id through apply_iap_refund (never below 0, shortfall
-- logged); a transaction never credited here is recorded as no_purchase; every other
-- type is only recorded. A notificationUUID seen before changes nothing and answers
-- already_processed = true with the first outcome; a concurrent duplicate waits for
-- the first on the primary key.
-- Returns {already_processed, notification_type, outcome, user_id, credits_removed,
-- shortfall, credits_remaining}.
-- Caller: service_role only (POST /functions/v1/apple/notifications, after the
-- signature was verified).
create function public.apply_app_store_notification(
    p_notification_uuid uuid,
    p_notification_type text,
    p_subtype text default null,
    p_transaction_id text default null,
    p_signed_at timestamptz default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_seen private.app_store_notifications;
    v_user_id uuid;
    v_refund jsonb;
    v_outcome text := 'acknowledged';
begin
    if p_notification_uuid is null then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'notification_uuid', 'reason', 'required')::text;
    end if;
    if p_notification_type is null or char_length(p_notification_type) not between 1 and 64 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'notification_type',
                'reason', 'length 1-64')::text;
    end if;
    if p_notification_type in ('REFUND', 'REVOKE') and p_transaction_id is null then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'transaction_id', 'reason', 'required')::text;
    end if;

    insert into private.app_store_notifications (
        notification_uuid, notification_type, subtype, transaction_id, outcome, signed_at)
    values (
        p_notification_uuid, p_notification_type, p_subtype, p_transaction_id, v_outcome,
        p_signed_at)
    on conflict (notification_uuid) do nothing;
    if not found then
        select * into v_seen
          from private.app_store_notifications n
         where n.notification_uuid = p_notification_uuid;
        return jsonb_build_object(
            'already_processed', true,
            'notification_type', v_seen.notification_type,
            'outcome', v_seen.outcome,
            'user_id', v_seen.user_id,
            'credits_removed', v_seen.credits_removed,
            'shortfall', v_seen.shortfall,
            'credits_remaining', (select u.credits_remaining from public.users u
                                   where u.id = v_seen.user_id));
    end if;

    if p_notification_type in ('REFUND', 'REVOKE') then
        select q.user_id into v_user_id
          from public.quota_log q
         where q.transaction_id = p_transaction_id and q.reason = 'iap_purchase';
        if found then
            v_refund := public.apply_iap_refund(v_user_id, p_transaction_id);
            v_outcome := case when (v_refund ->> 'already_processed')::boolean
                              then 'already_refunded' else 'refunded' end;
        else
            v_outcome := 'no_purchase';
        end if;
        update private.app_store_notifications n
           set outcome = v_outcome,
               user_id = v_user_id,
               credits_removed = case when v_outcome = 'refunded'
                                      then (v_refund ->> 'credits_removed')::integer
                                      else 0 end,
               shortfall = case when v_outcome = 'refunded'
                                then (v_refund ->> 'shortfall')::integer else 0 end
         where n.notification_uuid = p_notification_uuid
        returning * into v_seen;
    else
        select * into v_seen
          from private.app_store_notifications n
         where n.notification_uuid = p_notification_uuid;
    end if;

    return jsonb_build_object(
        'already_processed', false,
        'notification_type', v_seen.notification_type,
        'outcome', v_seen.outcome,
        'user_id', v_seen.user_id,
        'credits_removed', v_seen.credits_removed,
        'shortfall', v_seen.shortfall,
        'credits_remaining', (v_refund ->> 'credits_remaining')::integer);
end;
$$;
revoke all on function public.apply_app_store_notification(uuid, text, text, text, timestamptz)
    from public, anon, authenticated;
grant execute on function public.apply_app_store_notification(uuid, text, text, text, timestamptz)
    to service_role;
comment on function public.apply_app_store_notification(uuid, text, text, text, timestamptz) is
    'Handles an App Store notification once (REFUND/REVOKE refund). Caller: service_role.';
