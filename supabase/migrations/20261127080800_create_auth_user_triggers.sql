-- Keep public.users in step with auth.users (SPEC §1).
--
-- GoTrue writes auth.users as supabase_auth_admin, which has no rights on public, so the
-- trigger functions are security definer with an empty search_path. They never raise
-- for data reasons: a failing trigger would make sign-up or sign-in fail.

-- The Apple subject of an auth user, from the metadata GoTrue stores for the apple
-- provider (user_metadata carries the id_token's sub / provider_id).
-- Caller: the trigger functions below.
create function private.apple_sub_of(p_app_meta jsonb, p_user_meta jsonb)
returns text
language sql
immutable
security invoker
set search_path = ''
as $$
    select case
        when coalesce(p_app_meta -> 'providers', '[]'::jsonb) ? 'apple'
            or p_app_meta ->> 'provider' = 'apple'
        then nullif(coalesce(p_user_meta ->> 'provider_id', p_user_meta ->> 'sub'), '')
    end;
$$;
revoke all on function private.apple_sub_of(jsonb, jsonb)
    from public, anon, authenticated, service_role;
comment on function private.apple_sub_of(jsonb, jsonb) is
    'Apple subject from auth.users metadata, or null. Caller: auth.users trigger functions.';


-- Creates the public.users row of a new auth user: a guest with 0 credits.
-- is_guest follows is_anonymous; a user with neither email nor Apple identity is a guest.
-- Caller: trigger on_auth_user_created only.
create function private.handle_auth_user_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_email text := nullif(new.email, '');
    v_apple_sub text := private.apple_sub_of(new.raw_app_meta_data, new.raw_user_meta_data);
begin
    -- Another user already holds this Apple subject: keep the row without it.
    if v_apple_sub is not null
        and exists (select 1 from public.users u where u.apple_sub = v_apple_sub) then
        v_apple_sub := null;
    end if;

    insert into public.users (id, email, apple_sub, is_guest)
    values (
        new.id,
        v_email,
        v_apple_sub,
        coalesce(new.is_anonymous, false) or (v_email is null and v_apple_sub is null)
    )
    on conflict (id) do nothing;
    return new;
end;
$$;
revoke all on function private.handle_auth_user_created()
    from public, anon, authenticated, service_role;
comment on function private.handle_auth_user_created() is
    'Trigger: creates public.users for a new auth.users row. Caller: trigger only.';

create trigger on_auth_user_created
    after insert on auth.users
    for each row execute function private.handle_auth_user_created();


-- When a guest links an identity (Apple, email) the auth user stops being anonymous:
-- copy the email and Apple subject and clear is_guest. Credits and jobs stay with the
-- same id. A user never becomes a guest again.
-- Caller: trigger on_auth_user_updated only.
create function private.handle_auth_user_updated()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_email text := nullif(new.email, '');
    v_apple_sub text := private.apple_sub_of(new.raw_app_meta_data, new.raw_user_meta_data);
begin
    if v_apple_sub is not null
        and exists (
            select 1 from public.users u where u.apple_sub = v_apple_sub and u.id <> new.id
        ) then
        v_apple_sub := null;
    end if;

    update public.users u
       set email = coalesce(v_email, u.email),
           apple_sub = coalesce(u.apple_sub, v_apple_sub),
           is_guest = u.is_guest
               and (coalesce(new.is_anonymous, false)
                    or (coalesce(v_email, u.email) is null
                        and coalesce(u.apple_sub, v_apple_sub) is null))
     where u.id = new.id
       and (u.email is distinct from coalesce(v_email, u.email)
            or u.apple_sub is distinct from coalesce(u.apple_sub, v_apple_sub)
            or (u.is_guest and not coalesce(new.is_anonymous, false)));
    return new;
end;
$$;
revoke all on function private.handle_auth_user_updated()
    from public, anon, authenticated, service_role;
comment on function private.handle_auth_user_updated() is
    'Trigger: copies email / Apple subject, clears is_guest on linking. Caller: trigger only.';

create trigger on_auth_user_updated
    after update of email, is_anonymous, raw_app_meta_data, raw_user_meta_data on auth.users
    for each row execute function private.handle_auth_user_updated();
