"""Who is calling: the Bearer JWT, and signed-URL tokens.

Mirrors supabase/storage `src/http/plugins/jwt.ts` and `src/internal/auth/jwt.ts`: a
missing token on a route that allows it means the `anon` role; an invalid one is
AccessDenied with the verifier's message. Bearer JWTs are checked against the stack's key
set (`JWT_JWKS` as the Supabase CLI passes it): an asymmetric token with the key matching
its `kid`, type and algorithm, an HMAC one with the JWT secret. Signed-URL tokens stay
HS256 JWTs signed with the secret and carry `url` (`bucket/key`), a `scope` (`download` /
`upload`) and `exp`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from ..keys import ES256, HS256, JwtKeys
from . import _errors as errors

_BEARER = re.compile(r"^Bearer\s+", re.IGNORECASE)
SCOPE_DOWNLOAD = "download"
SCOPE_UPLOAD = "upload"


@dataclass(frozen=True)
class Caller:
    """The identity a request runs as in PostgreSQL."""

    role: str
    claims: dict[str, Any] = field(default_factory=dict)
    token: str = ""
    authenticated: bool = False

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub else None

    @property
    def claims_json(self) -> str:
        return json.dumps(self.claims, separators=(",", ":"))


ANON = Caller(role="anon", claims={"role": "anon"})
SERVICE = Caller(role="service_role", claims={"role": "service_role"}, authenticated=True)


_HMAC = (HS256, "HS384", "HS512")
_EC = (ES256, "ES384", "ES512")


def _verification_key(token: str, keys: JwtKeys) -> tuple[str, Any]:
    """(algorithm, key) for `token`, chosen as Storage's `findJWKFromHeader` does."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _JwtProblem("Invalid Compact JWS") from exc
    alg = str(header.get("alg"))
    # Without a key set (legacy mode) only the configured HS256; with one, the
    # families of its keys (EC and the secret as `oct`).
    allowed = (HS256,) if keys.signing is None else (*_HMAC, *_EC)
    if alg not in allowed:
        raise _JwtProblem('"alg" (Algorithm) Header Parameter value not allowed')
    if alg in _HMAC:
        return alg, keys.secret
    kid = header.get("kid")
    key = keys.public_key(kid) if isinstance(kid, str) and alg == ES256 else None
    if key is None:
        # Storage falls back to the secret's bytes, which jose refuses for an EC algorithm.
        raise _JwtProblem(f"Key for the {alg} algorithm must be one of type CryptoKey, "
                          "KeyObject, or JSON Web Key. Received an instance of Uint8Array")
    return alg, key


def _verify(token: str, keys: JwtKeys) -> dict[str, Any]:
    """Verify a Bearer token; errors carry jose's wording, as Storage answers it."""
    alg, key = _verification_key(token, keys)
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[alg],
            options={"verify_aud": False, "require": []}, leeway=0)
    except jwt.ExpiredSignatureError as exc:
        raise _JwtProblem('"exp" claim timestamp check failed') from exc
    except jwt.InvalidSignatureError as exc:
        raise _JwtProblem("signature verification failed") from exc
    except jwt.DecodeError as exc:
        raise _JwtProblem("Invalid Compact JWS") from exc
    except jwt.InvalidTokenError as exc:
        raise _JwtProblem(str(exc) or "Invalid JWT") from exc
    return claims


class _JwtProblem(Exception):
    pass


def authenticate(authorization: str | None, keys: JwtKeys, *, optional: bool) -> Caller:
    """The caller of a request from its Authorization header.

    `optional` routes (Storage's `allowInvalidJwt`) fall back to `anon` on a missing or bad
    token; the others answer a missing header as a schema error and a bad token as
    AccessDenied, like Storage.
    """
    if authorization is None and not optional:
        raise errors.validation_error("headers must have required property 'authorization'")
    token = _BEARER.sub("", authorization or "")
    if not token and optional:
        return ANON
    try:
        claims = _verify(token, keys)
    except _JwtProblem as exc:
        if optional:
            return ANON
        raise errors.access_denied(str(exc)) from None
    role = claims.get("role") or "anon"
    return Caller(role=str(role), claims=claims, token=token, authenticated=True)


def sign_url_token(secret: str, payload: dict[str, Any], expires_in: int) -> str:
    """A signed-URL token valid for `expires_in` seconds."""
    now = int(time.time())
    return jwt.encode({**payload, "iat": now, "exp": now + expires_in}, secret,
                      algorithm="HS256")


def verify_url_token(secret: str, token: str, *, bucket: str, name: str,
                     scope: str) -> dict[str, Any]:
    """Check a signed-URL token for one object and one action (Storage's
    `verifyObjectSignature`): signature, scope, path binding, expiry."""
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"],
                             options={"verify_exp": False, "verify_aud": False})
    except jwt.InvalidTokenError as exc:
        message = "Invalid Compact JWS" if isinstance(exc, jwt.DecodeError) else (
            "signature verification failed" if isinstance(exc, jwt.InvalidSignatureError)
            else str(exc))
        raise errors.invalid_jwt(message) from None
    token_scope = payload.get("scope")
    if scope == SCOPE_UPLOAD:
        valid_scope = token_scope == SCOPE_UPLOAD or (token_scope is None and "upsert" in payload)
    else:
        valid_scope = token_scope == SCOPE_DOWNLOAD or (
            token_scope is None and "upsert" not in payload)
    if not valid_scope:
        raise errors.invalid_signature(f"Token is not scoped for {scope}")
    if payload.get("url") != f"{bucket}/{name}":
        raise errors.invalid_signature()
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or exp < time.time():
        raise errors.expired_signature()
    return payload
