-- deduct_credits with a p_job_id: a job that is not the user's, or one already
-- charged, is refused with the functions' own error codes instead of the constraints'
-- (23503 from the ledger's job check, 23505 from idx_quota_log_job_reason, whose texts
-- name internals). The constraints stay as the backstop. The checks run after the
-- user's row is locked, and every ledger row of a user's jobs is written under that
-- lock, so no other transaction can charge the job between the check and the insert.
--   PT404 not_found            {"resource": "job", "id": ...}
--   PT409 job_already_charged  {"job_id": ...}
create or replace function public.deduct_credits(
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
    if p_job_id is not null then
        if not exists (select 1 from public.video_jobs j
                        where j.job_id = p_job_id and j.user_id = p_user_id)
           and not exists (select 1 from public.video_jobs_archive a
                            where a.job_id = p_job_id and a.user_id = p_user_id) then
            raise exception using errcode = 'PT404', message = 'not_found',
                detail = jsonb_build_object('resource', 'job', 'id', p_job_id)::text;
        end if;
        if p_reason = 'video_generation' and exists (
                select 1 from public.quota_log q
                 where q.job_id = p_job_id and q.reason = 'video_generation') then
            raise exception using errcode = 'PT409', message = 'job_already_charged',
                detail = jsonb_build_object('job_id', p_job_id)::text;
        end if;
    end if;
    if v_balance < p_amount then
        raise exception using errcode = 'PT402', message = 'insufficient_credits',
            detail = jsonb_build_object('required', p_amount, 'available', v_balance)::text;
    end if;

    v_entry := private.apply_ledger_entry(p_user_id, -p_amount, p_reason, p_job_id);
    return jsonb_build_object('credits_remaining', v_entry.balance_after, 'entry_id', v_entry.id);
end;
$$;
comment on function public.deduct_credits(uuid, integer, text, uuid) is
    'Removes credits, never below 0 (PT402); a job must be the user''s (PT404) and is charged once (PT409). Caller: service_role.';
