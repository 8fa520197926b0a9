-- Credit functions. Each balance change is one call, one transaction: the
-- user's row is locked, users.credits_remaining/credits_total/ledger_version change and
-- one quota_log row is appended with balance_after.
--
-- Errors use custom SQLSTATEs that PostgREST maps to HTTP statuses (PTnnn -> nnn); the
-- message is the stable error code, the detail a JSON object:
--   PT400 invalid_request              {"field": ..., "reason": ...}
--   PT402 insufficient_credits         {"required": n, "available": m}
--   PT404 not_found                    {"resource": "user" | "transaction" | ...}
--   PT409 transaction_already_used     {"transaction_id": ...}

-- Appends one ledger row and moves the user's balance by p_change.
-- Callers must have validated the change (never below 0: the CHECK is the backstop).
-- Caller: the credit and job functions (security definer) only.
create function private.apply_ledger_entry(
    p_user_id uuid,
    p_change integer,
    p_reason text,
    p_job_id uuid default null,
    p_transaction_id text default null,
    p_shortfall integer default 0
)
returns public.quota_log
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_earned integer := case
        when p_reason in ('initial_grant', 'iap_purchase') then p_change
        when p_reason = 'admin_adjustment' and p_change > 0 then p_change
        else 0
    end;
    v_balance integer;
    v_total integer;
    v_version bigint;
    v_entry public.quota_log;
begin
    update public.users u
       set credits_remaining = u.credits_remaining + p_change,
           credits_total = u.credits_total + v_earned,
           ledger_version = u.ledger_version + 1
     where u.id = p_user_id
    returning u.credits_remaining, u.credits_total, u.ledger_version
         into v_balance, v_total, v_version;
    if not found then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'user', 'id', p_user_id)::text;
    end if;

    insert into public.quota_log (
        user_id, job_id, change, reason, transaction_id,
        balance_after, total_after, shortfall, version
    )
    values (
        p_user_id, p_job_id, p_change, p_reason, p_transaction_id,
        v_balance, v_total, p_shortfall, v_version
    )
    returning * into v_entry;
    return v_entry;
end;
$$;
revoke all on function private.apply_ledger_entry(uuid, integer, text, uuid, text, integer)
    from public, anon, authenticated, service_role;
comment on function private.apply_ledger_entry(uuid, integer, text, uuid, text, integer) is
    'Moves a balance and appends the quota_log row. Caller: credit/job functions only.';


-- Locks the user's row and returns its balance; raises not_found for unknown users.
-- Caller: the credit and job functions only.
create function private.lock_user_balance(p_user_id uuid)
returns integer
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_balance integer;
begin
    select u.credits_remaining into v_balance
      from public.users u
     where u.id = p_user_id
       for update;
    if not found then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'user', 'id', p_user_id)::text;
    end if;
    return v_balance;
end;
$$;
revoke all on function private.lock_user_balance(uuid)
    from public, anon, authenticated, service_role;
comment on function private.lock_user_balance(uuid) is
    'Locks a users row FOR UPDATE and returns the balance. Caller: credit/job functions only.';


-- Grants the initial 10 credits once per user and once per device, and binds the
-- device to the user (users.device_id is unique: a device moves to its newest user).
-- Returns true when credits were granted, false when the user or the device had
-- already claimed. Concurrent calls for one device serialize on its device_claims row.
-- Lock order (two users swapping devices must not deadlock): the device's claim row
-- first, which serialises every call for one device so the holder cannot change
-- underneath, then the caller's and the holder's rows together in id order.
-- Caller: service_role only (POST /functions/v1/device/check after DeviceCheck).
create function public.grant_initial_credits(p_user_id uuid, p_device_id text)
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
revoke all on function public.grant_initial_credits(uuid, text) from public, anon, authenticated;
grant execute on function public.grant_initial_credits(uuid, text) to service_role;
comment on function public.grant_initial_credits(uuid, text) is
    'Initial 10 credits, once per user and once per device; binds the device. Caller: service_role.';


-- Adds credits: an IAP purchase (p_transaction_id required: the App Store transaction
-- id) or a positive admin adjustment. Idempotent on (p_transaction_id, p_reason): a
-- replay changes nothing and answers already_processed = true with the current balance;
-- a transaction id already credited to another user raises transaction_already_used.
-- Returns {already_processed, credits_remaining, credits_total, entry_id}.
-- Caller: service_role only (IAP verification, admin tools).
create function public.add_credits(
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
revoke all on function public.add_credits(uuid, integer, text, text)
    from public, anon, authenticated;
grant execute on function public.add_credits(uuid, integer, text, text) to service_role;
comment on function public.add_credits(uuid, integer, text, text) is
    'Adds credits (iap_purchase / admin_adjustment), idempotent per transaction id. Caller: service_role.';


-- Removes credits, never below 0: a video generation (optionally tied to p_job_id) or
-- a negative admin adjustment. Raises PT402 insufficient_credits with
-- {"required", "available"} when the balance is too low.
-- Returns {credits_remaining, entry_id}.
-- Caller: service_role only.
create function public.deduct_credits(
    p_user_id uuid,
    p_amount integer,
    p_reason text,
    p_job_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_balance integer;
    v_entry public.quota_log;
begin
    if p_reason is null or p_reason not in ('video_generation', 'admin_adjustment') then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'reason',
                'reason', 'video_generation or admin_adjustment')::text;
    end if;
    if p_amount is null or p_amount <= 0 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'amount', 'reason', 'must be > 0')::text;
    end if;

    v_balance := private.lock_user_balance(p_user_id);
    if v_balance < p_amount then
        raise exception using errcode = 'PT402', message = 'insufficient_credits',
            detail = jsonb_build_object('required', p_amount, 'available', v_balance)::text;
    end if;

    v_entry := private.apply_ledger_entry(p_user_id, -p_amount, p_reason, p_job_id);
    return jsonb_build_object('credits_remaining', v_entry.balance_after, 'entry_id', v_entry.id);
end;
$$;
revoke all on function public.deduct_credits(uuid, integer, text, uuid)
    from public, anon, authenticated;
grant execute on function public.deduct_credits(uuid, integer, text, uuid) to service_role;
comment on function public.deduct_credits(uuid, integer, text, uuid) is
    'Removes credits, never below 0 (PT402 insufficient_credits). Caller: service_role.';


-- App Store refund (Server Notification V2 REFUND): removes the credits the purchase
-- p_transaction_id granted, never below 0; what was already spent is recorded as the
-- log row's shortfall. Idempotent per transaction: a replay answers
-- already_processed = true. Raises PT404 not_found when the user has no such purchase.
-- Returns {already_processed, credits_removed, shortfall, credits_remaining}.
-- Caller: service_role only.
create function public.apply_iap_refund(p_user_id uuid, p_transaction_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_purchase public.quota_log;
    v_refund public.quota_log;
    v_balance integer;
    v_removed integer;
begin
    v_balance := private.lock_user_balance(p_user_id);

    select * into v_purchase
      from public.quota_log q
     where q.transaction_id = p_transaction_id
       and q.reason = 'iap_purchase'
       and q.user_id = p_user_id;
    if not found then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'transaction',
                'transaction_id', p_transaction_id)::text;
    end if;

    select * into v_refund
      from public.quota_log q
     where q.transaction_id = p_transaction_id and q.reason = 'iap_refund';
    if found then
        return jsonb_build_object(
            'already_processed', true,
            'credits_removed', -v_refund.change,
            'shortfall', v_refund.shortfall,
            'credits_remaining', v_balance);
    end if;

    v_removed := least(v_purchase.change, v_balance);
    v_refund := private.apply_ledger_entry(
        p_user_id, -v_removed, 'iap_refund', null, p_transaction_id,
        v_purchase.change - v_removed);
    return jsonb_build_object(
        'already_processed', false,
        'credits_removed', v_removed,
        'shortfall', v_refund.shortfall,
        'credits_remaining', v_refund.balance_after);
end;
$$;
revoke all on function public.apply_iap_refund(uuid, text) from public, anon, authenticated;
grant execute on function public.apply_iap_refund(uuid, text) to service_role;
comment on function public.apply_iap_refund(uuid, text) is
    'Takes back an IAP purchase (never below 0, shortfall logged), once. Caller: service_role.';
