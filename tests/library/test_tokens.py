"""TokenVerifier against the real local stack: Auth's own tokens, the JWKS and its cache,
HS256 through the secret or through `GET /auth/v1/user`, and forged tokens refused.

The HTTP traffic goes through a transport that only counts requests on their way to the
stack, so the tests can say how often the JWKS was fetched.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from supabase import ClientOptions, create_client

from rendio_backend import AccessClaims, AuthError, RendioConfig, TokenVerifier
from tests.support.jwts import hmac_jwt, public_key_pem, rewrite_header, unsigned_jwt
from tests.support.stack import LEGACY_KEYS, RunningStack

JWKS = "/auth/v1/.well-known/jwks.json"
USER = "/auth/v1/user"
new_keys_only = pytest.mark.skipif(LEGACY_KEYS, reason="legacy mode has no signing key")


class Counting(httpx.AsyncBaseTransport):
    """A real transport that records the path of every request it sends."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


Check = Callable[[TokenVerifier, Counting], Awaitable[None]]


def _run(config: RendioConfig, check: Check, **options: Any) -> None:
    async def main() -> None:
        transport = Counting()
        async with httpx.AsyncClient(transport=transport) as http, \
                TokenVerifier(config, http=http, **options) as verifier:
            await check(verifier, transport)

    asyncio.run(main())


async def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        await verifier.verify(token)
    assert (caught.value.code, caught.value.http_status) == ("unauthorized", 401)
    return caught.value.message


@pytest.fixture(scope="module")
def session(stack: RunningStack) -> tuple[str, str]:
    """(user id, access token) of a real anonymous user, signed by Auth."""
    client = create_client(stack.config.api_url, stack.publishable_key,
                           options=ClientOptions(auto_refresh_token=False))
    signed_in = client.auth.sign_in_anonymously()
    assert signed_in.session is not None and signed_in.user is not None
    return signed_in.user.id, signed_in.session.access_token


def test_auths_tokens_are_verified(stack: RunningStack, session: tuple[str, str]) -> None:
    user_id, token = session

    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        claims = await verifier.verify(token)
        assert isinstance(claims, AccessClaims) and claims.sub == uuid.UUID(user_id)
        assert claims.is_anonymous and claims.role == "authenticated"
        assert claims.session_id == claims.raw["session_id"] and claims.email == ""
        # ES256: the JWKS, once. Legacy HS256 with no secret configured: Auth's /user.
        assert transport.paths == ([USER] if LEGACY_KEYS else [JWKS])

    _run(stack.rendio_config(), check)


def test_hs256_with_the_secret_needs_no_round_trip(stack: RunningStack,
                                                   session: tuple[str, str]) -> None:
    token = stack.user_jwt(session[0], alg="HS256")

    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        assert (await verifier.verify(token)).sub == uuid.UUID(session[0])
        forged = stack.user_jwt(session[0], secret="another-secret-that-is-at-least-32-chars!")
        assert "signature" in await _refused(verifier, forged)
        assert transport.paths == []

    _run(stack.rendio_config(), check, jwt_secret=stack.config.jwt_secret)


def test_hs256_without_the_secret_asks_auth(stack: RunningStack,
                                            session: tuple[str, str]) -> None:
    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        good = stack.user_jwt(session[0], alg="HS256")
        assert (await verifier.verify(good)).sub == uuid.UUID(session[0])
        forged = stack.user_jwt(session[0], secret="another-secret-that-is-at-least-32-chars!")
        assert "refused by Supabase Auth" in await _refused(verifier, forged)
        # Signed right, but for nobody Auth knows.
        await _refused(verifier, stack.user_jwt(str(uuid.uuid4())))
        assert transport.paths == [USER, USER, USER]
        # Claims that are wrong on their face never reach Auth.
        await _refused(verifier, stack.user_jwt(session[0], aud="another-app"))
        await _refused(verifier, stack.user_jwt(session[0], expires_in=-60))
        assert len(transport.paths) == 3

    _run(stack.rendio_config(), check)


@pytest.mark.parametrize("kind", ["another EC key", "unknown kid", "alg none",
                                  "RS/HS confusion", "ES256 as RS256", "expired",
                                  "wrong audience", "wrong issuer", "anon key",
                                  "service_role key"])
@pytest.mark.parametrize("secret", [True, False], ids=["with secret", "without secret"])
def test_forged_tokens_are_refused(stack: RunningStack, session: tuple[str, str], kind: str,
                                   secret: bool) -> None:
    claims = jwt.decode(session[1], options={"verify_signature": False})
    signing = stack.config.jwt_keys.signing
    kid = signing.kid if signing is not None else str(uuid.uuid4())
    ours = signing.public_key if signing is not None else ec.generate_private_key(
        ec.SECP256R1()).public_key()
    other = ec.generate_private_key(ec.SECP256R1())
    tokens = {
        "another EC key": lambda: jwt.encode(claims, other, algorithm="ES256",
                                             headers={"kid": kid}),
        "unknown kid": lambda: jwt.encode(claims, other, algorithm="ES256",
                                          headers={"kid": str(uuid.uuid4())}),
        "alg none": lambda: unsigned_jwt(claims, kid=kid),
        "RS/HS confusion": lambda: hmac_jwt(claims, public_key_pem(ours), kid=kid),
        # The header claims RS256 for the EC key's kid: the key's algorithm decides.
        "ES256 as RS256": lambda: rewrite_header(
            jwt.encode(claims, other, algorithm="ES256", headers={"kid": kid}), alg="RS256"),
        "expired": lambda: stack.user_jwt(session[0], expires_in=-1),
        "wrong audience": lambda: stack.user_jwt(session[0], aud="another-app"),
        "wrong issuer": lambda: stack.user_jwt(session[0],
                                               iss="https://evil.example.com/auth/v1"),
        "anon key": lambda: stack.config.anon_key,
        "service_role key": lambda: stack.config.service_role_key,
    }

    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        await _refused(verifier, tokens[kind]())

    options = {"jwt_secret": stack.config.jwt_secret} if secret else {}
    _run(stack.rendio_config(), check, **options)


@new_keys_only
def test_the_jwks_is_cached_and_refreshed_for_a_new_kid(stack: RunningStack,
                                                        session: tuple[str, str]) -> None:
    claims = jwt.decode(session[1], options={"verify_signature": False})
    other = ec.generate_private_key(ec.SECP256R1())

    def rotated() -> str:
        return jwt.encode(claims, other, algorithm="ES256", headers={"kid": str(uuid.uuid4())})

    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        now = [1000.0]
        verifier._now = lambda: now[0]  # the clock, stepped by hand
        await verifier.verify(session[1])
        await verifier.verify(session[1])
        assert transport.paths == [JWKS]  # cached: Auth says max-age=600
        # A minute on, an unknown kid (a rotated key?) fetches the JWKS again, and is
        # refused when the new JWKS does not have it either...
        now[0] += 60
        assert "no signing key" in await _refused(verifier, rotated())
        assert transport.paths == [JWKS, JWKS]
        # ...but a flood of unknown kids fetches no more than once every few seconds.
        await _refused(verifier, rotated())
        assert len(transport.paths) == 2
        now[0] += 5
        await _refused(verifier, rotated())
        assert len(transport.paths) == 3
        # Past max-age the keys are fetched again even for a known kid.
        now[0] += 600
        await verifier.verify(session[1])
        assert len(transport.paths) == 4

    _run(stack.rendio_config(), check)


@new_keys_only
def test_a_stack_on_localhost_accepts_tokens_naming_127_0_0_1(
        stack: RunningStack, session: tuple[str, str]) -> None:
    config = RendioConfig(supabase_url=stack.config.api_url.replace("127.0.0.1", "localhost"),
                          anon_key=stack.publishable_key)

    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        assert (await verifier.verify(session[1])).sub == uuid.UUID(session[0])

    _run(config, check)


def test_auth_out_of_reach_is_not_a_bad_token(stack: RunningStack,
                                              session: tuple[str, str]) -> None:
    from rendio_backend import RendioConnectionError
    from rendio_backend.local._proc import free_port

    nowhere = RendioConfig(supabase_url=f"http://127.0.0.1:{free_port()}",
                           anon_key=stack.publishable_key, connect_timeout=1)

    token = stack.user_jwt(session[0], alg=stack.config.jwt_keys.algorithm,
                           iss=nowhere.auth_url)

    async def check(verifier: TokenVerifier, transport: Counting) -> None:
        with pytest.raises(RendioConnectionError):
            await verifier.verify(token)

    _run(nowhere, check)
