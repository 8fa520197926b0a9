"""The local Auth service through the official `supabase` client, against the running stack.

Each test checks a behaviour of GoTrue that the app relies on: anonymous sign-in, password
sign-up, Sign in with Apple (and upgrading an anonymous user to Apple without changing its
id), refresh-token rotation and reuse detection, admin endpoints and triggers on
`auth.users`. Expected errors are the ones GoTrue returns (status, code, message).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from rendio_backend.local.fake_apple import FakeAppleIssuer


def _client(stack: Any, key: str | None = None, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    options = ClientOptions(auto_refresh_token=False, headers=headers)
    return create_client(stack.config.api_url, key or stack.publishable_key, options=options)


@pytest.fixture
def client(stack: Any) -> Client:
    return _client(stack)


@pytest.fixture
def admin(stack: Any) -> Client:
    return _client(stack, stack.secret_key)


@pytest.fixture
def apple(stack: Any) -> FakeAppleIssuer:
    return FakeAppleIssuer(stack.config)


def _claims(stack: Any, token: str) -> dict[str, Any]:
    # ES256 with the stack's signing key, or HS256 with its secret in legacy mode.
    keys = stack.config.jwt_keys
    key = keys.signing.public_key if keys.signing is not None else keys.secret
    return jwt.decode(token, key, algorithms=[keys.algorithm], audience="authenticated")


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def _apple_sign_in(client: Client, apple: FakeAppleIssuer, sub: str, **mint: Any) -> Any:
    nonce = secrets.token_hex(16)
    token = apple.mint_id_token(sub=sub, nonce=nonce, **mint)
    return client.auth.sign_in_with_id_token(
        {"provider": "apple", "token": token, "nonce": nonce})


def test_anonymous_sign_in_refresh_and_logout(stack: Any, client: Client) -> None:
    signed_in = client.auth.sign_in_anonymously()
    assert signed_in.user is not None and signed_in.session is not None
    user, session = signed_in.user, signed_in.session
    assert user.is_anonymous and user.role == "authenticated" and user.identities == []
    claims = _claims(stack, session.access_token)
    assert claims["iss"] == stack.config.auth_url
    assert claims["sub"] == user.id and claims["role"] == "authenticated"
    assert claims["is_anonymous"] is True and claims["aal"] == "aal1"
    assert [entry["method"] for entry in claims["amr"]] == ["anonymous"]
    assert claims["email"] == "" and claims["app_metadata"] == {}
    assert session.token_type == "bearer" and session.expires_in == stack.config.jwt_expiry

    seen = client.auth.get_user()
    assert seen is not None and seen.user.id == user.id

    refreshed = client.auth.refresh_session()
    assert refreshed.session is not None and refreshed.user is not None
    assert refreshed.user.id == user.id
    assert refreshed.session.refresh_token != session.refresh_token
    assert _claims(stack, refreshed.session.access_token)["session_id"] == claims["session_id"]

    client.auth.sign_out()
    with pytest.raises(AuthApiError) as refused:
        client.auth.refresh_session(refreshed.session.refresh_token)
    assert (refused.value.status, refused.value.code) == (400, "refresh_token_not_found")
    with pytest.raises(AuthApiError) as gone:
        client.auth.get_user(refreshed.session.access_token)
    assert (gone.value.status, gone.value.code) == (403, "session_not_found")


def test_password_sign_up_and_sign_in(stack: Any, client: Client) -> None:
    email, password = _email(), "correct horse battery"
    signed_up = client.auth.sign_up({"email": email, "password": password,
                                     "options": {"data": {"name": "Ada"}}})
    assert signed_up.session is not None and signed_up.user is not None
    user = signed_up.user
    assert user.email == email and user.email_confirmed_at is not None
    assert user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert user.user_metadata["name"] == "Ada" and not user.is_anonymous
    assert [i.provider for i in user.identities or []] == ["email"]

    other = _client(stack)
    signed_in = other.auth.sign_in_with_password({"email": email.upper(), "password": password})
    assert signed_in.user is not None and signed_in.user.id == user.id
    assert signed_in.session is not None
    assert [e["method"] for e in _claims(stack, signed_in.session.access_token)["amr"]] == \
        ["password"]

    with pytest.raises(AuthApiError) as wrong:
        _client(stack).auth.sign_in_with_password({"email": email, "password": "not it!"})
    assert (wrong.value.status, wrong.value.code) == (400, "invalid_credentials")
    assert wrong.value.message == "Invalid login credentials"

    with pytest.raises(AuthApiError) as again:
        _client(stack).auth.sign_up({"email": email, "password": password})
    assert (again.value.status, again.value.code) == (422, "user_already_exists")

    with pytest.raises(AuthWeakPasswordError) as weak:
        _client(stack).auth.sign_up({"email": _email(), "password": "abc"})
    assert weak.value.status == 422 and weak.value.reasons == ["length"]


def test_anonymous_user_becomes_permanent_with_email(stack: Any, client: Client) -> None:
    anonymous = client.auth.sign_in_anonymously().user
    assert anonymous is not None
    email = _email()
    updated = client.auth.update_user({"email": email, "password": "now permanent",
                                       "data": {"plan": "pro"}}).user
    assert (updated.id, updated.email, updated.is_anonymous) == (anonymous.id, email, False)
    assert updated.user_metadata["plan"] == "pro" and updated.email_confirmed_at is not None
    signed_in = _client(stack).auth.sign_in_with_password(
        {"email": email, "password": "now permanent"})
    assert signed_in.user is not None and signed_in.user.id == anonymous.id

    with pytest.raises(AuthApiError) as forbidden:
        client.auth.update_user({"app_metadata": {"credits": 100}})  # type: ignore[typeddict-unknown-key]
    assert (forbidden.value.status, forbidden.value.code) == (403, "not_admin")


def test_apple_sign_in(stack: Any, client: Client, apple: FakeAppleIssuer) -> None:
    sub = f"001234.{uuid.uuid4().hex}.0001"
    email = f"{uuid.uuid4().hex[:10]}@privaterelay.appleid.com"
    first = _apple_sign_in(client, apple, sub, email=email)
    assert first.user is not None and first.session is not None
    user = first.user
    assert not user.is_anonymous and user.email == email and user.email_confirmed_at
    assert user.app_metadata == {"provider": "apple", "providers": ["apple"]}
    identity = (user.identities or [])[0]
    assert (identity.provider, identity.id) == ("apple", sub)
    assert identity.identity_data["custom_claims"]["is_private_email"] is True
    assert [e["method"] for e in _claims(stack, first.session.access_token)["amr"]] == ["oauth"]

    again = _apple_sign_in(_client(stack), apple, sub)
    assert again.user is not None and again.user.id == user.id


@pytest.fixture
def whoami(stack: Any, sql: Any) -> Iterator[str]:
    """An RPC returning what PostgREST's request says about the caller."""
    name = f"whoami_{uuid.uuid4().hex[:8]}"
    sql(f"""
        create function public.{name}() returns jsonb language sql stable as $$
          select jsonb_build_object('uid', auth.uid(),
                                    'is_anonymous', auth.jwt() -> 'is_anonymous')
        $$;
        grant execute on function public.{name}() to authenticated;
    """)
    try:
        stack.reload_schema(f"/rpc/{name}")
        yield name
    finally:
        sql(f"drop function if exists public.{name}()")


def _link_apple(stack: Any, access_token: str, id_token: str, nonce: str) -> httpx.Response:
    """What supabase-js `linkIdentity({provider: 'apple', token, nonce})` sends
    (supabase-py has no id_token linking)."""
    return httpx.post(
        f"{stack.config.auth_url}/token", params={"grant_type": "id_token"},
        json={"provider": "apple", "id_token": id_token, "nonce": nonce,
              "link_identity": True},
        headers={"apikey": stack.publishable_key, "Authorization": f"Bearer {access_token}",
                 "X-Supabase-Api-Version": "2024-01-01"},
    )


def test_anonymous_user_links_apple_and_keeps_its_id(
        stack: Any, client: Client, apple: FakeAppleIssuer, whoami: str) -> None:
    anonymous = client.auth.sign_in_anonymously()
    assert anonymous.user is not None and anonymous.session is not None
    assert client.rpc(whoami).execute().data == {"uid": anonymous.user.id,
                                                 "is_anonymous": True}
    sub = f"001234.{uuid.uuid4().hex}.0002"
    nonce = secrets.token_hex(16)
    linked = _link_apple(stack, anonymous.session.access_token,
                         apple.mint_id_token(sub=sub, nonce=nonce, email=_email()), nonce)
    assert linked.status_code == 200, linked.text
    body = linked.json()
    assert body["user"]["id"] == anonymous.user.id
    assert body["user"]["is_anonymous"] is False
    assert body["user"]["app_metadata"]["providers"] == ["apple"]
    assert _claims(stack, body["access_token"])["is_anonymous"] is False

    client.auth.set_session(body["access_token"], body["refresh_token"])
    seen = client.auth.get_user()
    assert seen is not None and seen.user.id == anonymous.user.id and not seen.user.is_anonymous
    # PostgREST sees the same auth.uid(), now as a permanent user.
    assert client.rpc(whoami).execute().data == {"uid": anonymous.user.id,
                                                 "is_anonymous": False}

    # Signing in with Apple later finds the same (formerly anonymous) user.
    later = _apple_sign_in(_client(stack), apple, sub)
    assert later.user is not None and later.user.id == anonymous.user.id

    # Another anonymous user cannot take that Apple identity.
    thief = _client(stack).auth.sign_in_anonymously()
    assert thief.session is not None
    nonce = secrets.token_hex(16)
    refused = _link_apple(stack, thief.session.access_token,
                          apple.mint_id_token(sub=sub, nonce=nonce), nonce)
    assert refused.status_code == 422
    assert refused.json() == {"code": "identity_already_exists",
                              "message": "Identity is already linked to another user"}
    assert refused.headers["x-sb-error-code"] == "identity_already_exists"


def test_bad_apple_tokens_are_refused(stack: Any, client: Client,
                                      apple: FakeAppleIssuer) -> None:
    sub = f"001234.{uuid.uuid4().hex}.0003"
    nonce = secrets.token_hex(16)
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "Nonces mismatch": apple.mint_id_token(sub=sub, nonce="another nonce"),
        "Unacceptable audience in id_token: [com.example.other]":
            apple.mint_id_token(sub=sub, nonce=nonce, audience="com.example.other"),
        "Bad ID token": apple.mint_id_token(sub=sub, nonce=nonce, expires_in=-60),
    }
    for message, token in cases.items():
        with pytest.raises(AuthApiError) as refused:
            client.auth.sign_in_with_id_token(
                {"provider": "apple", "token": token, "nonce": nonce})
        assert (refused.value.status, refused.value.message) == (400, message)
    with pytest.raises(AuthApiError) as forged:
        client.auth.sign_in_with_id_token({"provider": "apple", "nonce": nonce, "token":
                                           apple.mint_id_token(sub=sub, nonce=nonce,
                                                               key=foreign)})
    assert (forged.value.status, forged.value.message) == (400, "Bad ID token")
    with pytest.raises(AuthApiError) as elsewhere:
        client.auth.sign_in_with_id_token({"provider": "apple", "nonce": nonce, "token":
                                           apple.mint_id_token(
                                               sub=sub, nonce=nonce,
                                               issuer="https://issuer.example")})
    assert (elsewhere.value.status, elsewhere.value.code) == (400, "validation_failed")
    assert client.auth.get_session() is None


def test_refresh_token_reuse_is_detected(stack: Any, client: Client,
                                         sql: Any) -> None:
    session = client.auth.sign_in_anonymously().session
    assert session is not None
    first = session.refresh_token
    second = client.auth.refresh_session(first).session
    assert second is not None
    third = client.auth.refresh_session(second.refresh_token).session
    assert third is not None
    # A client that lost the last answer gets the current token back.
    retried = client.auth.refresh_session(second.refresh_token).session
    assert retried is not None and retried.refresh_token == third.refresh_token

    # Outside the reuse interval (10 s), reusing an old token is an attack: it fails
    # and revokes every token of the session.
    sql("update auth.refresh_tokens set updated_at = now() - interval '1 minute' "
        "where token = %s", first)
    with pytest.raises(AuthApiError) as reused:
        client.auth.refresh_session(first)
    assert (reused.value.status, reused.value.code) == (400, "refresh_token_already_used")
    assert reused.value.message == "Invalid Refresh Token: Already Used"
    session_id = _claims(stack, third.access_token)["session_id"]
    assert sql("select count(*) from auth.refresh_tokens where session_id = %s "
               "and not revoked", session_id) == [(0,)]


def test_admin_endpoints(stack: Any, admin: Client, client: Client) -> None:
    email = _email()
    created = admin.auth.admin.create_user(
        {"email": email, "password": "admin made it", "email_confirm": True,
         "user_metadata": {"name": "Grace"}, "app_metadata": {"tier": "gold"}})
    user = created.user
    assert user.email == email and user.email_confirmed_at is not None
    assert user.app_metadata == {"provider": "email", "providers": ["email"], "tier": "gold"}

    listed = admin.auth.admin.list_users(page=1, per_page=1000)
    assert user.id in {u.id for u in listed}
    fetched = admin.auth.admin.get_user_by_id(user.id)
    assert fetched.user.user_metadata["name"] == "Grace"
    updated = admin.auth.admin.update_user_by_id(user.id, {"user_metadata": {"name": None,
                                                                             "plan": "pro"}})
    assert updated.user.user_metadata == {"plan": "pro", "email_verified": True}
    signed_in = _client(stack).auth.sign_in_with_password(
        {"email": email, "password": "admin made it"})
    assert signed_in.session is not None

    admin.auth.admin.delete_user(user.id, should_soft_delete=True)
    soft = admin.auth.admin.get_user_by_id(user.id).user
    assert soft.deleted_at is not None and soft.email != email
    admin.auth.admin.delete_user(user.id)
    with pytest.raises(AuthApiError) as missing:
        admin.auth.admin.get_user_by_id(user.id)
    assert (missing.value.status, missing.value.code) == (404, "user_not_found")

    session = client.auth.sign_in_anonymously().session
    assert session is not None
    for outsider in (_client(stack, token=session.access_token), _client(stack)):
        with pytest.raises(AuthApiError) as refused:
            outsider.auth.admin.list_users()
        assert (refused.value.status, refused.value.code) == (403, "not_admin")


@pytest.fixture
def trigger_table(sql: Any) -> Iterator[str]:
    name = f"auth_trigger_log_{uuid.uuid4().hex[:8]}"
    sql(f"create table public.{name} (id uuid primary key, email text, "
        "is_anonymous boolean)")
    try:
        yield name
    finally:
        sql(f"drop trigger if exists {name} on auth.users")
        sql(f"drop function if exists public.{name}()")
        sql(f"drop table if exists public.{name}")


def _trigger(sql: Any, name: str, security: str) -> None:
    sql(f"""
        create or replace function public.{name}() returns trigger
        language plpgsql security {security} set search_path = '' as $$
        begin
          insert into public.{name} (id, email, is_anonymous)
          values (new.id, new.email, new.is_anonymous);
          return new;
        end $$;
        drop trigger if exists {name} on auth.users;
        create trigger {name} after insert on auth.users
          for each row execute function public.{name}();
    """)


def test_trigger_on_auth_users_runs_as_on_hosted(sql: Any, client: Client,
                                                  trigger_table: str) -> None:
    # A security definer trigger works: GoTrue's inserts fire it.
    _trigger(sql, trigger_table, "definer")
    anonymous = client.auth.sign_in_anonymously().user
    assert anonymous is not None
    assert sql(f"select email, is_anonymous from public.{trigger_table} where id = %s",
               anonymous.id) == [(None, True)]

    # A security invoker one runs as supabase_auth_admin, which may not write to public:
    # the sign-up fails with GoTrue's "Database error saving new user", as on hosted.
    _trigger(sql, trigger_table, "invoker")
    with pytest.raises(AuthApiError) as failed:
        client.auth.sign_up({"email": _email(), "password": "a fine password"})
    assert (failed.value.status, failed.value.code) == (500, "unexpected_failure")
    assert failed.value.message == "Database error saving new user"


def test_error_bodies_follow_the_api_version(stack: Any) -> None:
    url = f"{stack.config.auth_url}/token?grant_type=password"
    body = {"email": _email(), "password": "whatever it is"}
    headers = {"apikey": stack.publishable_key}
    legacy = httpx.post(url, json=body, headers=headers)
    assert legacy.status_code == 400
    assert legacy.json() == {"code": 400, "error_code": "invalid_credentials",
                             "msg": "Invalid login credentials"}
    assert legacy.headers["x-sb-error-code"] == "invalid_credentials"
    current = httpx.post(url, json=body,
                         headers={**headers, "X-Supabase-Api-Version": "2024-01-01"})
    assert current.json() == {"code": "invalid_credentials",
                              "message": "Invalid login credentials"}
    assert current.headers["X-Supabase-Api-Version"] == "2024-01-01"

    settings = httpx.get(f"{stack.config.auth_url}/settings", headers=headers).json()
    assert settings["external"]["apple"] and settings["external"]["anonymous_users"]
    assert httpx.get(f"{stack.config.auth_url}/.well-known/jwks.json").json() == (
        stack.config.jwt_keys.public_jwks())
