"""Supabase's API keys and signing keys on the local stack, through the official clients.

The publishable and secret keys work beside the legacy anon / service_role JWTs; the
gateway maps them as the Supabase CLI's Kong does; Auth signs ES256 with a `kid` and
publishes the public key; PostgREST, Storage and Auth refuse forged tokens. The module
also runs in legacy mode (RENDIO_TEST_KEYS=legacy: HS256 only, no published key).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from supabase import Client, ClientOptions, create_client

from tests.support.jwts import hmac_jwt, public_key_pem, unsigned_jwt
from tests.support.stack import LEGACY_KEYS, RunningStack

UNKNOWN_SB_KEY = "sb_publishable_notTheStacksKeyAtAll_0000000"
new_keys_only = pytest.mark.skipif(LEGACY_KEYS, reason="legacy mode has no signing key")


def _client(stack: RunningStack, key: str) -> Client:
    return create_client(stack.config.api_url, key,
                         options=ClientOptions(auto_refresh_token=False))


def _headers(stack: RunningStack, token: str | None = None,
             key: str | None = None) -> dict[str, str]:
    headers = {"apikey": key or stack.publishable_key}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@pytest.fixture(scope="module")
def session(stack: RunningStack) -> tuple[str, str]:
    """(user id, access token) of a real anonymous user, as Auth signs it."""
    signed_in = _client(stack, stack.publishable_key).auth.sign_in_anonymously()
    assert signed_in.session is not None and signed_in.user is not None
    return signed_in.user.id, signed_in.session.access_token


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["publishable", "legacy anon"])
def test_an_app_key_signs_in_anonymously_and_reads_its_own_row(stack: RunningStack,
                                                               kind: str) -> None:
    key = stack.config.publishable_key if kind == "publishable" else stack.config.anon_key
    client = _client(stack, key)
    signed_in = client.auth.sign_in_anonymously()
    assert signed_in.session is not None and signed_in.user is not None
    header = jwt.get_unverified_header(signed_in.session.access_token)
    assert header["alg"] == stack.config.jwt_keys.algorithm
    signing = stack.config.jwt_keys.signing
    assert header.get("kid") == (signing.kid if signing is not None else None)
    rows = client.table("users").select("id, is_guest").execute().data
    assert rows == [{"id": signed_in.user.id, "is_guest": True}]


@pytest.mark.parametrize("kind", ["secret", "legacy service_role"])
def test_a_server_key_manages_buckets_and_users(stack: RunningStack, kind: str) -> None:
    key = stack.config.secret_key if kind == "secret" else stack.config.service_role_key
    admin = _client(stack, key)
    name = f"keys-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(name, options={"public": False})
    try:
        assert name in [bucket.name for bucket in admin.storage.list_buckets()]
    finally:
        admin.storage.delete_bucket(name)
    assert admin.auth.admin.list_users(per_page=1) is not None


@pytest.mark.parametrize("path", ["/rest/v1/users", "/auth/v1/user", "/storage/v1/bucket",
                                  "/functions/v1/health"])
def test_an_unknown_sb_key_is_401_everywhere(stack: RunningStack, path: str) -> None:
    response = httpx.get(stack.config.api_url + path, headers={"apikey": UNKNOWN_SB_KEY})
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid authentication credentials"}


def test_the_jwks_is_open_and_holds_only_public_keys(stack: RunningStack,
                                                     session: tuple[str, str]) -> None:
    response = httpx.get(f"{stack.config.auth_url}/.well-known/jwks.json")  # no apikey
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=600"
    keys = response.json()["keys"]
    signing = stack.config.jwt_keys.signing
    if signing is None:
        assert keys == []  # GoTrue never publishes the HS256 secret
        return
    [key] = keys
    assert {k: key[k] for k in ("kty", "crv", "alg", "kid", "use", "key_ops")} == {
        "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": signing.kid, "use": "sig",
        "key_ops": ["verify"]}
    assert "d" not in key
    # What a server does with it: verify Auth's tokens with nothing but the JWKS.
    claims = jwt.decode(session[1], jwt.PyJWK(key).key, algorithms=["ES256"],
                        audience="authenticated", issuer=stack.config.auth_url)
    assert claims["sub"] == session[0]


# --- the gateway's Authorization ----------------------------------------------------------


def test_an_apikey_alone_acts_as_its_role(stack: RunningStack) -> None:
    api = stack.config.api_url
    for key in (stack.config.secret_key, stack.config.service_role_key):
        # Storage sees a Bearer token (no 400 for a missing Authorization header).
        buckets = httpx.get(f"{api}/storage/v1/bucket", headers={"apikey": key})
        assert buckets.status_code == 200 and isinstance(buckets.json(), list)
        users = httpx.get(f"{api}/rest/v1/users?select=id&limit=1", headers={"apikey": key})
        assert users.status_code == 200
    # The publishable key alone is anon, which may not read public.users.
    anon = httpx.get(f"{api}/rest/v1/users?select=id", headers=_headers(stack))
    assert anon.status_code == 401 and anon.json()["code"] == "42501"


def test_a_user_token_wins_over_the_secret_key(stack: RunningStack,
                                               session: tuple[str, str]) -> None:
    user_id, token = session
    other = _client(stack, stack.publishable_key).auth.sign_in_anonymously().user
    assert other is not None
    url = f"{stack.config.api_url}/rest/v1/users?select=id&id=in.({user_id},{other.id})"
    secret = stack.config.secret_key
    as_user = httpx.get(url, headers=_headers(stack, token, key=secret))
    assert as_user.json() == [{"id": user_id}]
    # `Bearer sb_…` is no token: the apikey decides (supabase-py sends its key so).
    as_service = httpx.get(url, headers=_headers(stack, stack.config.publishable_key,
                                                 key=secret))
    assert {row["id"] for row in as_service.json()} == {user_id, other.id}


@pytest.mark.parametrize("authorization, status", [
    ("Bearer {}", 200), ("bearer {}", 200), ("BEARER {}", 200),
    ("Bearer  {}", 401), ("Bearer\t{}", 401), ("Bearer {} x", 401), ("Token {}", 401)])
def test_auth_reads_bearer_tokens_as_gotrue_does(stack: RunningStack, session: tuple[str, str],
                                                 authorization: str, status: int) -> None:
    """GoTrue's `(?i)^bearer (\\S+$)` on the value net/http trimmed: one space exactly."""
    response = httpx.get(f"{stack.config.auth_url}/user", headers={
        "apikey": stack.publishable_key, "Authorization": authorization.format(session[1])})
    assert response.status_code == status
    if status == 401:
        assert response.json()["error_code"] == "no_authorization"


# --- tokens: accepted, refused --------------------------------------------------------------


def _everywhere(stack: RunningStack, token: str) -> dict[str, httpx.Response]:
    api, headers = stack.config.api_url, _headers(stack, token)
    return {"rest": httpx.get(f"{api}/rest/v1/users?select=id", headers=headers),
            "storage": httpx.get(f"{api}/storage/v1/bucket", headers=headers),
            "auth": httpx.get(f"{api}/auth/v1/user", headers=headers)}


@pytest.mark.parametrize("alg", ["ES256", "HS256"])
def test_auths_and_minted_tokens_are_accepted_everywhere(
        stack: RunningStack, session: tuple[str, str], alg: str) -> None:
    user_id, token = session
    if alg != stack.config.jwt_keys.algorithm:
        if alg == "ES256":
            pytest.skip("legacy mode has no signing key")
        # HS256 tokens stay valid beside ES256 ones (GoTrue: HS256 without a kid).
        token = stack.user_jwt(user_id, alg="HS256")
    for service, response in _everywhere(stack, token).items():
        assert response.status_code == 200, (service, response.text)
    assert _everywhere(stack, token)["rest"].json() == [{"id": user_id}]


def _forged(stack: RunningStack, kind: str, claims: dict[str, Any]) -> str:
    signing = stack.config.jwt_keys.signing
    # In legacy mode no key is published: a forger picks a kid of their own.
    kid = signing.kid if signing is not None else str(uuid.uuid4())
    ours = signing.public_key if signing is not None else ec.generate_private_key(
        ec.SECP256R1()).public_key()
    other = ec.generate_private_key(ec.SECP256R1())
    if kind == "another EC key":
        return jwt.encode(claims, other, algorithm="ES256", headers={"kid": kid})
    if kind == "HS256, wrong secret":
        return jwt.encode(claims, "another-secret-that-is-at-least-32-chars!", algorithm="HS256")
    if kind == "alg none":
        return unsigned_jwt(claims, kid=kid)
    if kind == "RS/HS confusion":
        return hmac_jwt(claims, public_key_pem(ours), kid=kid)
    if kind == "RS/HS confusion, no kid":
        return hmac_jwt(claims, public_key_pem(ours))
    if kind == "expired":
        return stack.user_jwt(claims["sub"], expires_in=-120)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["another EC key", "HS256, wrong secret", "alg none",
                                  "RS/HS confusion", "RS/HS confusion, no kid", "expired"])
def test_forged_tokens_are_refused_everywhere(stack: RunningStack, session: tuple[str, str],
                                              kind: str) -> None:
    claims = jwt.decode(session[1], options={"verify_signature": False})
    seen = _everywhere(stack, _forged(stack, kind, claims))
    assert seen["rest"].status_code == 401, seen["rest"].text
    # Storage answers AccessDenied as HTTP 400 with the status in the body.
    assert seen["storage"].status_code == 400, seen["storage"].text
    assert seen["storage"].json()["statusCode"] == "403"
    assert seen["auth"].status_code == 403, seen["auth"].text
    assert seen["auth"].json()["error_code"] == "bad_jwt"


def test_a_token_for_another_audience_is_for_servers_to_refuse(
        stack: RunningStack, session: tuple[str, str]) -> None:
    """Supabase's servers do not refuse it: PostgREST has no `jwt-aud` (as the Supabase
    CLI runs it), Storage never reads `aud`, and GoTrue's `/user` compares the token's
    `aud` with itself unless `X-JWT-Aud` asks for another. Hence TokenVerifier checks it."""
    token = stack.user_jwt(session[0], aud="another-app")
    for service, response in _everywhere(stack, token).items():
        assert response.status_code == 200, (service, response.text)
    asked = httpx.get(f"{stack.config.auth_url}/user",
                      headers={**_headers(stack, token), "X-JWT-Aud": "authenticated"})
    assert asked.status_code == 400
    assert asked.json()["msg"] == "Token audience doesn't match request audience"


@new_keys_only
def test_postgrest_12_tries_every_key_whatever_the_kid(stack: RunningStack,
                                                       session: tuple[str, str]) -> None:
    """Measured on PostgREST 12.0.2 (hs-jose): any key of the set that verifies wins, so
    a token signed by the stack's key under another `kid` passes; 13+ refuses it, as Auth
    and Storage do. Harmless (only our key signs), but a PostgREST upgrade shows here."""
    claims = jwt.decode(session[1], options={"verify_signature": False})
    signing = stack.config.jwt_keys.signing
    assert signing is not None
    token = jwt.encode(claims, signing.private_key, algorithm="ES256",
                       headers={"kid": str(uuid.uuid4())})
    seen = _everywhere(stack, token)
    assert seen["rest"].status_code == 200
    assert seen["auth"].status_code == 403 and seen["storage"].status_code == 400


@new_keys_only
def test_postgrest_reads_the_key_set_not_a_secret(stack: RunningStack) -> None:
    """PostgREST 12 takes a `jwt-secret` it cannot parse as JWKS for an HMAC secret, and
    then refuses every ES256 token: the key set on disk is what it verifies with."""
    path = stack.config.run_dir / "postgrest-jwks.json"
    assert f'jwt-secret = "@{path}"' in (stack.config.run_dir / "postgrest.conf").read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    expires = int(time.time()) + 60
    token = stack.user_jwt(str(uuid.uuid4()), alg="ES256", exp=expires)
    response = httpx.get(f"{stack.config.api_url}/rest/v1/rpc/stack_jwt_probe",
                         headers=_headers(stack, token))
    # Verified, then unknown function: PostgREST got past the JWT (401 would be a refusal).
    assert response.status_code == 404, response.text
