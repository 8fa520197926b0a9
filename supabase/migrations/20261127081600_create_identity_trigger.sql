-- Record the Apple subject when an Apple identity is attached to a user (SPEC §1).
--
-- GoTrue inserts an auth.identities row for every provider a user signs in or links
-- with; linking Apple to a guest only adds that row (and the provider to app_metadata),
-- so the identity row, not the user metadata, is where the Apple subject is certain.

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
    -- Never raises: another user holding the subject keeps it, and sign-in goes on.
    update public.users u
       set apple_sub = new.provider_id,
           is_guest = false
     where u.id = new.user_id
       and u.apple_sub is null
       and not exists (
           select 1 from public.users other where other.apple_sub = new.provider_id
       );
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
