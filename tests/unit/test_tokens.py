"""TokenVerifier without a network: HS256 tokens checked with the project's secret, and
whatever is refused before any key is needed. The JWKS path runs against the stack in
tests/library/test_tokens.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rendio_backend import AccessClaims, AuthError, RendioConfig, TokenVerifier
from rendio_backend.tokens import _max_age
from tests.support.jwts import hmac_jwt, public_key_pem, unsigned_jwt

SECRET = "a-project-secret-that-is-at-least-32-characters"
URL = "https://abc.supabase.co"
ISSUER = f"{URL}/auth/v1"


def _verifier(**options: Any) -> TokenVerifier:
    config = RendioConfig(supabase_url=URL, anon_key="sb_publishable_x")
    return TokenVerifier(config, jwt_secret=SECRET, **options)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": str(uuid.uuid4()), "aud": "authenticated",
              "role": "authenticated", "iat": now, "exp": now + 600,
              "session_id": str(uuid.uuid4()), "is_anonymous": True, "email": ""}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def _verify(token: str, verifier: TokenVerifier | None = None) -> AccessClaims:
    return asyncio.run((verifier or _verifier()).verify(token))


def _refused(token: str, verifier: TokenVerifier | None = None) -> str:
    with pytest.raises(AuthError) as caught:
        _verify(token, verifier)
    assert (caught.value.code, caught.value.http_status) == ("unauthorized", 401)
    return caught.value.message


def test_a_valid_hs256_token_gives_its_claims() -> None:
    claims = _claims(email="a@example.com", is_anonymous=False)
    verified = _verify(_hs256(claims))
    assert verified.sub == uuid.UUID(claims["sub"]) and verified.role == "authenticated"
    assert verified.exp == claims["exp"] and verified.iat == claims["iat"]
    assert verified.session_id == claims["session_id"] and verified.email == "a@example.com"
    assert verified.is_anonymous is False and verified.raw == claims
    # A list audience works too, and an HS256 `kid` (an `oct` key's) changes nothing.
    listed = _verify(_hs256(_claims(aud=["other", "authenticated"]), kid="legacy"))
    assert listed.aud == ["other", "authenticated"]


@pytest.mark.parametrize("kind", ["wrong secret", "expired", "wrong audience", "wrong issuer",
                                  "anon role", "service role", "no exp", "no sub",
                                  "sub not a uuid", "alg none", "HS512", "garbage"])
def test_bad_tokens_are_refused(kind: str) -> None:
    tokens = {
        "wrong secret": lambda: _hs256(_claims(), "another-secret-that-is-at-least-32-chars"),
        "expired": lambda: _hs256(_claims(exp=int(time.time()) - 1)),
        "wrong audience": lambda: _hs256(_claims(aud="somebody-else")),
        "wrong issuer": lambda: _hs256(_claims(iss="https://evil.supabase.co/auth/v1")),
        "anon role": lambda: _hs256(_claims(role="anon")),
        "service role": lambda: _hs256(_claims(role="service_role")),
        "no exp": lambda: _hs256(_claims(exp=None)),
        "no sub": lambda: _hs256(_claims(sub=None)),
        "sub not a uuid": lambda: _hs256(_claims(sub="not-a-uuid")),
        "alg none": lambda: unsigned_jwt(_claims()),
        "HS512": lambda: jwt.encode(_claims(), SECRET * 2, algorithm="HS512"),
        "garbage": lambda: "not.a.jwt",
    }
    _refused(tokens[kind]())


def test_leeway_and_audience_are_the_callers() -> None:
    late = _hs256(_claims(exp=int(time.time()) - 5))
    _refused(late)
    assert _verify(late, _verifier(leeway=30)).exp < time.time()
    other = _hs256(_claims(aud="my-api"))
    assert _verify(other, _verifier(audience="my-api")).aud == "my-api"


def test_rs_hs_confusion_is_refused() -> None:
    """An HS256 token whose HMAC key is a public key's bytes: never a valid secret."""
    public = public_key_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    _refused(hmac_jwt(_claims(), public))


def test_an_asymmetric_token_needs_a_kid() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = _refused(jwt.encode(_claims(), key, algorithm="ES256"))
    assert "without a kid" in message


def test_loopback_issuers_are_one_local_stack() -> None:
    config = RendioConfig(supabase_url="http://localhost:54321")
    verifier = TokenVerifier(config, jwt_secret=SECRET)
    same = _hs256(_claims(iss="http://127.0.0.1:54321/auth/v1"))
    assert _verify(same, verifier).role == "authenticated"
    _refused(_hs256(_claims(iss="http://127.0.0.1:54999/auth/v1")), verifier)
    # Only for a local project: a hosted one's tokens must name it exactly.
    _refused(_hs256(_claims(iss="http://127.0.0.1/auth/v1")))


def test_cache_control_sets_how_long_keys_are_kept() -> None:
    assert _max_age("public, max-age=600") == 600
    assert _max_age("max-age=30, must-revalidate") == 30
    assert _max_age(None) == 600 and _max_age("public") == 600
    assert _max_age("no-store") == 0 and _max_age("private, no-cache") == 0
