"""Who is calling: the Bearer JWT (HS256, the stack's secret), and signed-URL tokens.

Mirrors supabase/storage `src/http/plugins/jwt.ts` and `src/internal/auth/jwt.ts`: a
missing token on a route that allows it means the `anon` role; an invalid one is
AccessDenied with the verifier's message. Signed-URL tokens are HS256 JWTs signed with the
same secret and carry `url` (`bucket/key`), a `scope` (`download` / `upload`) and `exp`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

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


def _verify(token: str, secret: str) -> dict[str, Any]:
    """Verify an HS256 token; errors carry jose's wording, as Storage answers it."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"],
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


def authenticate(authorization: str | None, secret: str, *, optional: bool) -> Caller:
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
        claims = _verify(token, secret)
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
