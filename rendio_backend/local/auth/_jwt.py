"""Access tokens: GoTrue's HS256 JWTs with its claims (`internal/tokens/service.go`)."""

from __future__ import annotations

import re
from typing import Any

import jwt

from ._errors import ApiError, forbidden

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def sign_access_token(*, secret: str, issuer: str, user: dict[str, Any], session_id: str,
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
    return jwt.encode(claims, secret, algorithm="HS256"), expires_at


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer` header, or GoTrue's 401."""
    match = _BEARER.match(authorization or "")
    if not match:
        raise ApiError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    return match.group(1)


def decode_token(token: str, secret: str) -> dict[str, Any]:
    """Verify an HS256 token (signature and `exp`, as golang-jwt does by default)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"],
            options={"verify_aud": False, "verify_iat": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError:
        raise _bad_jwt("token has invalid claims: token is expired") from None
    except jwt.InvalidSignatureError:
        raise _bad_jwt("token signature is invalid: signature is invalid") from None
    except jwt.ImmatureSignatureError:
        raise _bad_jwt("token has invalid claims: token is not valid yet") from None
    except jwt.InvalidAlgorithmError:
        raise _bad_jwt("token is unverifiable: signing method is invalid") from None
    except jwt.PyJWTError as exc:
        raise _bad_jwt(f"token is malformed: {exc}") from None
    return claims


def _bad_jwt(reason: str) -> ApiError:
    return forbidden("bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}")
