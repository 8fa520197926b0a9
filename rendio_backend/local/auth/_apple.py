"""Verifying Sign in with Apple id_tokens, as GoTrue's `IdTokenGrant` does.

Keys come from the issuer's JWKS over HTTP (Apple's `https://appleid.apple.com/auth/keys`,
locally the stack's fake issuer), fetched asynchronously and cached by `kid`; an unknown
`kid` triggers one refetch, which is how Apple's key rotation is picked up.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import aiohttp
import jwt

from ._errors import OAuthError, bad_request

_JWKS_TTL = 3600.0


class AppleVerifier:
    """Checks an Apple id_token's issuer, signature, expiry, audience and nonce."""

    def __init__(self, *, issuer: str, jwks_url: str, client_ids: tuple[str, ...]) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.client_ids = client_ids
        # aiohttp rather than httpx: the gateway already loads it, and httpx pulls in
        # its CLI's dependencies (rich, click, pygments) when they are installed.
        self._http: aiohttp.ClientSession | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The token's claims, or the error GoTrue returns for this token."""
        self._check_issuer(id_token)
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self._key(str(header.get("kid", "")))
            claims: dict[str, Any] = jwt.decode(
                id_token, key.key, algorithms=["RS256"],
                options={"verify_aud": False, "verify_iss": False, "verify_iat": False,
                         "require": ["exp"]},
            )
        except (jwt.PyJWTError, LookupError, aiohttp.ClientError, TimeoutError, ValueError):
            raise OAuthError("invalid request", "Bad ID token") from None
        if not claims.get("sub"):
            raise OAuthError("invalid request", "Missing sub claim in id_token")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if not any(aud in audiences for aud in self.client_ids if aud):
            raise OAuthError("invalid request",
                             f"Unacceptable audience in id_token: [{' '.join(audiences)}]")
        token_nonce = str(claims.get("nonce") or "")
        if bool(token_nonce) != bool(nonce):
            raise OAuthError("invalid request",
                             "Passed nonce and nonce in id_token should either both exist or not.")
        if nonce and hashlib.sha256(nonce.encode()).hexdigest() != token_nonce:
            raise OAuthError("invalid nonce", "Nonces mismatch")
        return claims

    def _check_issuer(self, id_token: str) -> None:
        try:
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise bad_request("validation_failed",
                              "Unable to detect issuer in ID token for Apple provider") from None
        if unverified.get("iss") != self.issuer:
            raise bad_request("validation_failed",
                              "Detected ID token issuer is not an Apple ID token issuer")

    async def _key(self, kid: str) -> jwt.PyJWK:
        fresh = time.monotonic() - self._fetched_at < _JWKS_TTL
        if kid in self._keys and fresh:
            return self._keys[kid]
        async with self._lock:
            # Another request may have refreshed the keys while this one waited.
            if kid not in self._keys or time.monotonic() - self._fetched_at >= _JWKS_TTL:
                await self._fetch()
        return self._keys[kid]

    async def _fetch(self) -> None:
        if self._http is None:
            raise RuntimeError("the Apple verifier is not open")
        async with self._http.get(self.jwks_url) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        keys: dict[str, jwt.PyJWK] = {}
        for data in document.get("keys", []):
            if data.get("kty") == "RSA" and data.get("kid"):
                keys[str(data["kid"])] = jwt.PyJWK.from_dict(data, algorithm="RS256")
        self._keys = keys
        self._fetched_at = time.monotonic()


def apple_identity_data(claims: dict[str, Any]) -> dict[str, Any]:
    """The identity data GoTrue stores for an Apple id_token (`parseAppleIDToken`)."""
    data: dict[str, Any] = {"iss": claims["iss"], "sub": claims["sub"],
                            "provider_id": claims["sub"],
                            # Apple vouches for the email it sends (or for its absence).
                            "email_verified": True, "phone_verified": False}
    if claims.get("email"):
        data["email"] = str(claims["email"]).lower()
    custom: dict[str, Any] = {}
    if "is_private_email" in claims:
        private = claims["is_private_email"]
        custom["is_private_email"] = private is True or str(private).lower() == "true"
    if "auth_time" in claims:
        custom["auth_time"] = claims["auth_time"]
    if claims.get("transfer_sub"):
        custom["transfer_sub"] = claims["transfer_sub"]
    if custom:
        data["custom_claims"] = custom
    return data
