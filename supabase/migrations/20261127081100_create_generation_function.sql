-- create_video_job: the whole generation request in one transaction.
--
-- Order: idempotency check -> model available -> deduct cost -> job row 'pending' ->
-- quota_log row -> stored response. Returns an envelope
--   {"status_code": 202, "replayed": false|true, "response": {job_id, status,
--    credits_used, credits_remaining}}
-- where response is the stored body (byte-for-byte the same on a replay).
--
-- Idempotency semantics (keys are per user; p_request_hash fingerprints method, path
-- and body):
-- * A transaction-scoped advisory lock on (user, key) is taken with try-lock. If another
--   transaction holds it, the first request is still running: PT409
--   idempotency_key_in_use, at once, without waiting.
-- * Otherwise an existing row for (user, key) decides: a different hash -> PT422
--   idempotency_key_reused; state completed -> the stored response, replayed = true,
--   nothing charged; state in_progress (left by a multi-step caller) -> PT409. Expired
--   keys count as unused.
-- * Errors (validation, unavailable model, insufficient credits) roll the whole
--   transaction back, so nothing is stored and the client may retry with the same key.
--
-- Errors: PT400 invalid_request, PT402 insufficient_credits {required, available},
-- PT404 not_found {resource: user|model}, PT409 idempotency_key_in_use,
-- PT422 idempotency_key_reused, PT422 model_unavailable.
-- Caller: service_role only (POST /functions/v1/generate-video, after authenticating
-- the user and validating settings against models.settings_schema).
create function public.create_video_job(
    p_user_id uuid,
    p_model_id uuid,
    p_prompt text,
    p_settings jsonb,
    p_idempotency_key uuid,
    p_request_hash text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_key public.idempotency_log;
    v_model public.models;
    v_balance integer;
    v_job_id uuid;
    v_entry public.quota_log;
    v_response jsonb;
begin
    if p_user_id is null or p_idempotency_key is null then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'idempotency_key', 'reason', 'required')::text;
    end if;
    if p_request_hash is null or char_length(p_request_hash) not between 1 and 256 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'request_hash', 'reason', 'length 1-256')::text;
    end if;

    -- 1. Idempotency. The user's row is locked first: every later insert references it
    -- (a FOR KEY SHARE lock), and upgrading that lock afterwards would deadlock with a
    -- concurrent request of the same user.
    if not pg_try_advisory_xact_lock(
        hashtextextended('create_video_job:' || p_user_id::text || ':' || p_idempotency_key::text, 0)
    ) then
        raise exception using errcode = 'PT409', message = 'idempotency_key_in_use',
            detail = jsonb_build_object('idempotency_key', p_idempotency_key)::text;
    end if;
    v_balance := private.lock_user_balance(p_user_id);

    select * into v_key
      from public.idempotency_log k
     where k.user_id = p_user_id and k.idempotency_key = p_idempotency_key
       for update;
    if found and v_key.expires_at <= now() then
        delete from public.idempotency_log k
         where k.user_id = p_user_id and k.idempotency_key = p_idempotency_key;
    elsif found then
        if v_key.request_hash <> p_request_hash then
            raise exception using errcode = 'PT422', message = 'idempotency_key_reused',
                detail = jsonb_build_object('idempotency_key', p_idempotency_key)::text;
        end if;
        if v_key.state = 'completed' then
            return jsonb_build_object(
                'status_code', v_key.status_code,
                'replayed', true,
                'response', v_key.response_data);
        end if;
        raise exception using errcode = 'PT409', message = 'idempotency_key_in_use',
            detail = jsonb_build_object('idempotency_key', p_idempotency_key)::text;
    end if;

    -- 2. Request validation (after the key check, so a replay never re-validates).
    if p_prompt is null or char_length(p_prompt) not between 1 and 2000 then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'prompt', 'reason', 'length 1-2000')::text;
    end if;
    if p_settings is not null and jsonb_typeof(p_settings) <> 'object' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'settings', 'reason', 'object expected')::text;
    end if;

    insert into public.idempotency_log (
        user_id, idempotency_key, request_hash, state, operation_type
    )
    values (p_user_id, p_idempotency_key, p_request_hash, 'in_progress', 'video_generation');

    -- 3. Model.
    select * into v_model from public.models m where m.id = p_model_id;
    if not found then
        raise exception using errcode = 'PT404', message = 'not_found',
            detail = jsonb_build_object('resource', 'model', 'id', p_model_id)::text;
    end if;
    if not v_model.is_available then
        raise exception using errcode = 'PT422', message = 'model_unavailable',
            detail = jsonb_build_object('model_id', p_model_id)::text;
    end if;

    -- 4. Charge, job, ledger row.
    if v_balance < v_model.cost_per_generation then
        raise exception using errcode = 'PT402', message = 'insufficient_credits',
            detail = jsonb_build_object(
                'required', v_model.cost_per_generation, 'available', v_balance)::text;
    end if;

    insert into public.video_jobs (user_id, model_id, prompt, settings, status, credits_used,
                                   provider)
    values (p_user_id, p_model_id, p_prompt, coalesce(p_settings, '{}'::jsonb), 'pending',
            v_model.cost_per_generation, v_model.provider)
    returning job_id into v_job_id;

    v_entry := private.apply_ledger_entry(
        p_user_id, -v_model.cost_per_generation, 'video_generation', v_job_id);

    -- 5. Store the response.
    v_response := jsonb_build_object(
        'job_id', v_job_id,
        'status', 'pending',
        'credits_used', v_model.cost_per_generation,
        'credits_remaining', v_entry.balance_after);
    update public.idempotency_log k
       set state = 'completed', response_data = v_response, status_code = 202,
           job_id = v_job_id
     where k.user_id = p_user_id and k.idempotency_key = p_idempotency_key;

    return jsonb_build_object('status_code', 202, 'replayed', false, 'response', v_response);
end;
$$;
revoke all on function public.create_video_job(uuid, uuid, text, jsonb, uuid, text)
    from public, anon, authenticated;
grant execute on function public.create_video_job(uuid, uuid, text, jsonb, uuid, text)
    to service_role;
comment on function public.create_video_job(uuid, uuid, text, jsonb, uuid, text) is
    'Charges and creates a pending job, idempotent per (user, key). Caller: service_role.';
