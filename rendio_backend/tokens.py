"""Verify a user's Supabase access token on a server, as Supabase recommends.

    verifier = TokenVerifier(RendioConfig.from_env())
    claims = await verifier.verify(access_token)   # AuthError (401) when it is not valid
    claims.sub, claims.is_anonymous

- ES256 / RS256 tokens (the default since signing keys): the key named by the token's
  `kid` from `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`, cached as long as the
  response's `max-age` says and fetched again when a `kid` is unknown (a rotated key), at
  most once every few seconds.
- HS256 tokens (projects on the legacy secret): the secret when one is given
  (`jwt_secret`, or `SUPABASE_JWT_SECRET`), else one `GET /auth/v1/user` round trip,
  which lets Auth check the signature.

Either way `exp`, `aud` (default `authenticated`), `iss` (`<SUPABASE_URL>/auth/v1`) and
the `authenticated` role are checked; supabase-py's `get_claims()` checks neither `aud`
nor `iss`. `alg=none`, an algorithm other than the key's (an HMAC made with a public
key) and any other algorithm are refused.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import jwt
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from .config import RendioConfig, is_loopback_url
from .errors import AuthError, RateLimited, RendioConnectionError, ServerError

__all__ = ["AccessClaims", "TokenVerifier"]

# What Supabase signs user tokens with: asymmetric keys, or the legacy shared secret.
_ASYMMETRIC = frozenset({"ES256", "RS256"})
_HS256 = "HS256"
# GoTrue's JWKS says `max-age=600`; this is the fallback when a response says nothing.
_DEFAULT_MAX_AGE = 600.0
# An unknown `kid` refetches the JWKS at most this often, so a flood of tokens with made-up
# kids cannot turn into a flood of requests to Auth.
_REFRESH_INTERVAL = 5.0
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\b", re.IGNORECASE)


class AccessClaims(BaseModel):
    """The claims of a verified access token; `raw` holds all of them."""

    model_config = ConfigDict(frozen=True)

    sub: uuid.UUID
    role: str
    aud: str | list[str]
    exp: int
    iat: int | None = None
    session_id: str | None = None
    is_anonymous: bool = False
    email: str | None = None
    raw: dict[str, Any]


def _unauthorized(reason: str) -> AuthError:
    return AuthError(f"invalid access token: {reason}", code="unauthorized", http_status=401)


class TokenVerifier:
    """Checks access tokens issued by the Auth server of `config.supabase_url`.

    Safe to share between concurrent requests; `aclose()` (or `async with`) releases the
    HTTP client it made (one passed as `http` is left open).
    """

    def __init__(
        self,
        config: RendioConfig,
        *,
        jwt_secret: str | None = None,
        audience: str = "authenticated",
        leeway: int = 0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = config
        self._secret = jwt_secret or config.jwt_secret
        self._audience = audience
        self._leeway = leeway
        self._issuer = config.auth_url
        self._jwks_url = f"{config.auth_url}/.well-known/jwks.json"
        self._http = http
        self._owns_http = http is None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fresh_until = float("-inf")
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._now = time.monotonic  # tests step the clock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this verifier made."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def verify(self, token: str) -> AccessClaims:
        """The token's claims; AuthError (`unauthorized`, 401) unless it is valid now.

        RendioConnectionError / ServerError when Auth cannot be asked (the JWKS or,
        for HS256 without a secret, `/user`): that says nothing about the token.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("not a JWT") from None
        alg = header.get("alg")
        if alg in _ASYMMETRIC:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise _unauthorized(f"an {alg} token without a kid")
            key = await self._key(kid)
            if key is None:
                raise _unauthorized(f"no signing key {kid!r} in the project's JWKS")
            if key.algorithm_name != alg:
                raise _unauthorized(f"key {kid!r} is for {key.algorithm_name}, not {alg}")
            return self._checked(token, key.key, alg)
        if alg == _HS256:
            if self._secret:
                return self._checked(token, self._secret, alg)
            claims = self._checked(token, None, alg)
            await self._ask_auth(token, claims)
            return claims
        raise _unauthorized(f"algorithm {alg!r} is not accepted")

    # --- claims ------------------------------------------------------------------------
    def _checked(self, token: str, key: Any, alg: str) -> AccessClaims:
        """Signature (unless `key` is None: Auth checks it), `exp`, `aud`, `iss`, role."""
        checks = {"verify_signature": key is not None, "verify_exp": True,
                  "verify_nbf": True, "verify_aud": True, "verify_iat": False,
                  "verify_iss": False, "require": ["exp", "sub", "aud", "iss"]}
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=self._audience, leeway=self._leeway,
                options=checks)  # type: ignore[arg-type]
        except jwt.ExpiredSignatureError:
            raise _unauthorized("expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(f"not for audience {self._audience!r}") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(str(exc) or type(exc).__name__) from None
        if not self._issuer_ok(claims["iss"]):
            raise _unauthorized(f"issued by {claims['iss']!r}, not {self._issuer!r}")
        if claims.get("role") != "authenticated":
            raise _unauthorized(f"role {claims.get('role')!r} is not a signed-in user's")
        fields = {name: claims[name] for name in AccessClaims.model_fields
                  if name != "raw" and claims.get(name) is not None}
        try:
            return AccessClaims(**fields, raw=claims)
        except PydanticValidationError as exc:
            where = ".".join(str(part) for part in exc.errors()[0]["loc"])
            raise _unauthorized(f"malformed claim {where!r}") from None

    def _issuer_ok(self, issuer: object) -> bool:
        if issuer == self._issuer:
            return True
        # A local stack answers on 127.0.0.1 and localhost alike; its tokens name one.
        if not isinstance(issuer, str) or not (self._config.is_local
                                               and is_loopback_url(issuer)):
            return False
        ours, theirs = urlsplit(self._issuer), urlsplit(issuer)
        return (ours.scheme, ours.port, ours.path.rstrip("/")) == (
            theirs.scheme, theirs.port, theirs.path.rstrip("/"))

    # --- Auth ----------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            config = self._config
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
                follow_redirects=False)
        return self._http

    async def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            return await self._client().get(url, headers={"apikey": self._config.anon_key,
                                                          **headers})
        except httpx.HTTPError as exc:
            raise RendioConnectionError(f"could not reach Supabase Auth at {url}: {exc}"
                                        ) from exc

    async def _ask_auth(self, token: str, claims: AccessClaims) -> None:
        """`GET /user` with the token: Auth checks the HS256 signature (and that the
        user and session still exist)."""
        response = await self._get(f"{self._config.auth_url}/user",
                                   {"Authorization": f"Bearer {token}"})
        if response.status_code in (400, 401, 403, 404):
            raise _unauthorized("refused by Supabase Auth")
        if response.status_code == 429:
            raise RateLimited("Supabase Auth rate-limited the token check")
        if response.status_code != 200:
            raise ServerError(f"Supabase Auth answered HTTP {response.status_code} to GET "
                              "/user")
        if str(response.json().get("id")) != str(claims.sub):
            raise _unauthorized("Supabase Auth knows it as another user")

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        if self._now() < self._fresh_until and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            now = self._now()
            fresh = now < self._fresh_until
            if not (fresh and kid in self._keys) and (
                    not fresh or now - self._fetched_at >= _REFRESH_INTERVAL):
                try:
                    await self._fetch_jwks()
                except (RendioConnectionError, ServerError):
                    # Auth unreachable: a key it published before is still good.
                    if kid not in self._keys:
                        raise
            return self._keys.get(kid)

    async def _fetch_jwks(self) -> None:
        response = await self._get(self._jwks_url, {})
        self._fetched_at = self._now()
        if response.status_code != 200:
            raise ServerError(f"Supabase Auth answered HTTP {response.status_code} to GET "
                              f"{self._jwks_url}")
        keys: dict[str, jwt.PyJWK] = {}
        for data in response.json().get("keys") or []:
            # Shared secrets are never published; skip anything PyJWT cannot use.
            if not isinstance(data, dict) or data.get("kty") == "oct" or not data.get("kid"):
                continue
            try:
                keys[str(data["kid"])] = jwt.PyJWK(data)
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fresh_until = self._fetched_at + _max_age(response.headers.get("cache-control"))


def _max_age(cache_control: str | None) -> float:
    if not cache_control:
        return _DEFAULT_MAX_AGE
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else _DEFAULT_MAX_AGE
