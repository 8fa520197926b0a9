-- Keep public.users in step with auth.users.
--
-- GoTrue writes auth.users as supabase_auth_admin, which has no rights on public, so the
-- trigger functions are security definer with an empty search_path. They never raise
-- for data reasons: a failing trigger would make sign-up or sign-in fail.
--
-- public.users.apple_sub comes only from auth.identities (provider 'apple'; see the
-- identity triggers), never from auth.users metadata: a user can edit that metadata
-- (PUT /auth/v1/user), which would be a way to claim another account's Apple subject.


-- Creates the public.users row of a new auth user: a guest with 0 credits.
-- is_guest follows is_anonymous; a user without an email is a guest until an identity
-- is linked (on_auth_identity_created records Apple's).
-- Caller: trigger on_auth_user_created only.
create function private.handle_auth_user_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- The Apple subject arrives with the identity row (on_auth_identity_created).
    insert into public.users (id, email, is_guest)
    values (new.id, nullif(new.email, ''),
            coalesce(new.is_anonymous, false) or nullif(new.email, '') is null)
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


-- When a guest becomes a permanent user (an email, or an identity linked) copy the
-- email and clear is_guest; a user never becomes a guest again.
-- Caller: trigger on_auth_user_updated only.
create function private.handle_auth_user_updated()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_email text := nullif(new.email, '');
begin
    update public.users u
       set email = coalesce(v_email, u.email),
           is_guest = u.is_guest
               and (coalesce(new.is_anonymous, false)
                    or (coalesce(v_email, u.email) is null and u.apple_sub is null))
     where u.id = new.id
       and (u.email is distinct from coalesce(v_email, u.email)
            or (u.is_guest and not coalesce(new.is_anonymous, false)));
    return new;
end;
$$;
revoke all on function private.handle_auth_user_updated()
    from public, anon, authenticated, service_role;
comment on function private.handle_auth_user_updated() is
    'Trigger: copies email / Apple subject, clears is_guest on linking. Caller: trigger only.';

-- The trigger also fires on metadata changes (an earlier version read the Apple subject
-- from the metadata); the function ignores metadata, so those updates change nothing.
create trigger on_auth_user_updated
    after update of email, is_anonymous, raw_app_meta_data, raw_user_meta_data on auth.users
    for each row execute function private.handle_auth_user_updated();
