-- Record the Apple subject when an Apple identity is attached to a user, and release it
-- when the identity goes.
--
-- GoTrue inserts an auth.identities row for every provider a user signs in or links
-- with; linking Apple to a guest only adds that row (and the provider to app_metadata),
-- so the identity row, not the user metadata, is where the Apple subject is certain.
-- Identity rows are written only by Auth. The identity triggers never raise: a failing
-- trigger would make Auth's sign-in or linking fail.

-- Records the Apple subject of a newly attached Apple identity, atomically: when
-- another account still holds that subject the unique constraint says so and this
-- row is left as it is (sign-in goes on).
-- Caller: trigger on_auth_identity_created only.
create function private.handle_auth_identity_created()
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
revoke all on function private.handle_auth_identity_created()
    from public, anon, authenticated, service_role;
comment on function private.handle_auth_identity_created() is
    'Trigger: copies an Apple identity''s subject to public.users. Caller: trigger only.';

create trigger on_auth_identity_created
    after insert on auth.identities
    for each row execute function private.handle_auth_identity_created();


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
