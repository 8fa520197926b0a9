"""Access tokens as GoTrue signs and checks them (`internal/tokens/service.go`,
`internal/api/auth.go`): signed ES256 with the signing key's `kid` (HS256 without one in
legacy mode); a presented token is checked with the key its `kid` names, and an HS256
token whose `kid` names no key with the JWT secret."""

from __future__ import annotations

import re
from typing import Any

import jwt

from ..keys import ES256, HS256, JwtKeys
from ._errors import ApiError, forbidden

# GoTrue's bearerRegexp, `(?i)^bearer (\S+$)`: exactly one space, then the token.
_BEARER = re.compile(r"bearer (\S+)", re.IGNORECASE)
# GOTRUE_JWT_VALIDMETHODS as the Supabase CLI sets it.
VALID_METHODS = (HS256, "RS256", ES256)


def sign_access_token(*, keys: JwtKeys, issuer: str, user: dict[str, Any], session_id: str,
                      amr: list[dict[str, Any]], aal: str, issued_at: int,
                      expires_in: int) -> tuple[str, int]:
    """Sign an access token for `user` (its JSON form); returns the token and its `exp`."""
    expires_at = issued_at + expires_in
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": user["id"],
        "aud": user["aud"],
        "exp": expires_at,
        "iat": issued_at,
        "email": user["email"],
        "phone": user["phone"],
        "app_metadata": user["app_metadata"],
        "user_metadata": user["user_metadata"],
        "role": user["role"],
        "aal": aal,
        "amr": amr,
        "session_id": session_id,
        "is_anonymous": user["is_anonymous"],
    }
    return keys.sign(claims), expires_at


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer` header, or GoTrue's 401."""
    # Go's net/http hands GoTrue the value without its outer spaces and tabs.
    match = _BEARER.fullmatch((authorization or "").strip(" \t"))
    if not match:
        raise ApiError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    return match.group(1)


def decode_token(token: str, keys: JwtKeys) -> dict[str, Any]:
    """Verify a token as golang-jwt does for GoTrue: method, key by `kid`, signature, `exp`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _bad_jwt(f"token is malformed: {exc}") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in VALID_METHODS:
        raise _bad_jwt(f"token signature is invalid: signing method {alg} is invalid")
    key: Any = keys.public_key(kid) if isinstance(kid, str) else None
    if key is None:
        if alg != HS256:
            raise _bad_jwt("token is unverifiable: error while executing keyfunc: "
                           f"unrecognized JWT kid {'<nil>' if kid is None else kid} "
                           f"for algorithm {alg}")
        key = keys.secret
    elif alg != ES256:
        # The stack's asymmetric keys are EC: an HS256 or RS256 token naming one (e.g.
        # HMAC'd with the public key's bytes) is refused, never checked as a secret.
        raise _bad_jwt("token signature is invalid: key is of invalid type")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[alg],
            options={"verify_aud": False, "verify_iat": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError:
        raise _bad_jwt("token has invalid claims: token is expired") from None
    except jwt.InvalidSignatureError:
        reason = "crypto/ecdsa: verification error" if alg == ES256 else "signature is invalid"
        raise _bad_jwt(f"token signature is invalid: {reason}") from None
    except jwt.ImmatureSignatureError:
        raise _bad_jwt("token has invalid claims: token is not valid yet") from None
    except jwt.PyJWTError as exc:
        raise _bad_jwt(f"token is malformed: {exc}") from None
    return claims


def _bad_jwt(reason: str) -> ApiError:
    return forbidden("bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}")
