-- Functions clients call with their own JWT. All are security invoker: they run as the
-- caller, so RLS and column privileges decide what they can see and change.

-- The caller's balance: {credits_remaining, credits_total, tier, is_guest}, or null
-- when the caller has no user row.
-- Caller: authenticated (any signed-in user, guests included).
create function public.get_my_credits()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
    select jsonb_build_object(
               'credits_remaining', u.credits_remaining,
               'credits_total', u.credits_total,
               'tier', u.tier,
               'is_guest', u.is_guest)
      from public.users u
     where u.id = (select auth.uid());
$$;
revoke all on function public.get_my_credits() from public, anon, authenticated;
grant execute on function public.get_my_credits() to authenticated;
comment on function public.get_my_credits() is
    'The caller''s balance (security invoker, RLS). Caller: authenticated.';


-- The caller's credit history, newest first: at most p_limit (1-100) rows with a
-- version below p_before_version (keyset pagination; null = from the newest).
-- Caller: authenticated.
create function public.get_my_credit_history(
    p_limit integer default 50,
    p_before_version bigint default null
)
returns setof public.quota_log
language sql
stable
security invoker
set search_path = ''
as $$
    select q.*
      from public.quota_log q
     where q.user_id = (select auth.uid())
       and (p_before_version is null or q.version < p_before_version)
     order by q.version desc
     limit least(greatest(coalesce(p_limit, 50), 1), 100);
$$;
revoke all on function public.get_my_credit_history(integer, bigint)
    from public, anon, authenticated;
grant execute on function public.get_my_credit_history(integer, bigint) to authenticated;
comment on function public.get_my_credit_history(integer, bigint) is
    'The caller''s quota_log rows, newest first (security invoker, RLS). Caller: authenticated.';


-- Soft deletes one of the caller's jobs (sets deleted_at = now()). Returns true if a
-- live job of the caller was deleted; false for unknown, foreign or already deleted
-- jobs. The same is possible with PATCH /rest/v1/video_jobs (deleted_at only).
-- Caller: authenticated.
create function public.soft_delete_video_job(p_job_id uuid)
returns boolean
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
    update public.video_jobs j
       set deleted_at = now()
     where j.job_id = p_job_id
       and j.user_id = (select auth.uid())
       and j.deleted_at is null;
    return found;
end;
$$;
revoke all on function public.soft_delete_video_job(uuid) from public, anon, authenticated;
grant execute on function public.soft_delete_video_job(uuid) to authenticated;
comment on function public.soft_delete_video_job(uuid) is
    'Soft deletes one of the caller''s jobs (security invoker, RLS). Caller: authenticated.';
