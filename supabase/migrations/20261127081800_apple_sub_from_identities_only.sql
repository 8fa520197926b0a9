-- public.users.apple_sub comes only from auth.identities (provider 'apple').
--
-- The auth.users triggers used to read the Apple subject from user metadata, which a
-- user can edit (PUT /auth/v1/user) — a way to claim another account's Apple subject.
-- Identity rows are written only by Auth. The identity triggers never raise: a failing
-- trigger would make Auth's sign-in or linking fail.

-- Caller: trigger on_auth_user_created only.
create or replace function private.handle_auth_user_created()
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

-- When a guest becomes a permanent user (an email, or an identity linked) copy the
-- email and clear is_guest; a user never becomes a guest again.
-- Caller: trigger on_auth_user_updated only.
create or replace function private.handle_auth_user_updated()
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

drop function private.apple_sub_of(jsonb, jsonb);

-- Records the Apple subject of a newly attached Apple identity, atomically: when
-- another account still holds that subject the unique constraint says so and this
-- row is left as it is (sign-in goes on).
-- Caller: trigger on_auth_identity_created only.
create or replace function private.handle_auth_identity_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if new.provider <> 'apple' then
        return new;
    end if;
    begin
        update public.users u
           set apple_sub = new.provider_id,
               is_guest = false
         where u.id = new.user_id
           and u.apple_sub is null;
    exception when unique_violation then
        null;
    end;
    return new;
end;
$$;

-- Unlinking Apple releases the subject, so a later link elsewhere can take it.
-- Caller: trigger on_auth_identity_deleted only.
create function private.handle_auth_identity_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if old.provider <> 'apple' then
        return old;
    end if;
    begin
        update public.users u
           set apple_sub = null
         where u.id = old.user_id
           and u.apple_sub = old.provider_id;
    exception when check_violation then
        -- The subject was this user's only identity; Auth refuses to unlink the last
        -- identity, so this is a user being deleted: nothing to release.
        null;
    end;
    return old;
end;
$$;
revoke all on function private.handle_auth_identity_deleted()
    from public, anon, authenticated, service_role;
comment on function private.handle_auth_identity_deleted() is
    'Trigger: clears public.users.apple_sub when an Apple identity goes. Caller: trigger only.';

create trigger on_auth_identity_deleted
    after delete on auth.identities
    for each row execute function private.handle_auth_identity_deleted();

-- on_auth_user_updated still fires on metadata changes (dropping a trigger on auth.users
-- needs ownership of the table, which hosted Supabase does not give `postgres`); the
-- function above ignores metadata, so those updates change nothing.
