"""Tokens the project never issued, on all four services: REST, Storage, Auth and the API.

tests/local/test_keys.py covers `alg: none`, HS/RS confusion, a wrong secret and an
expired token on REST, Storage and Auth, and tests/api/test_api.py the same and a wrong
audience on the API; this adds what they leave out: not yet valid (`nbf` in the
future), a tampered payload (claims changed, signature kept), and a whole token from
another project (its own issuer, key, `kid` or secret). Each service refuses as the real
one does: PostgREST 401, Storage 400 with `statusCode: 403` in the body, Auth 403
`bad_jwt`, the API 401 `unauthorized` in its envelope.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fuzz.conftest import User
from tests.support.jwts import rewrite_header
from tests.support.stack import RunningStack

OTHER_ISSUER = "https://abcdefghijklmnopqrst.supabase.co/auth/v1"


def _payload(claims: dict[str, Any]) -> str:
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _token(stack: RunningStack, user: User, kind: str) -> str:
    claims: dict[str, Any] = jwt.decode(user.token, options={"verify_signature": False})
    now = int(time.time())
    alg = stack.config.jwt_keys.algorithm
    if kind == "not yet valid":
        return stack.user_jwt(user.user_id, alg=alg, nbf=now + 600)
    if kind.startswith("tampered"):
        header, _, signature = user.token.split(".")
        changed = ({"role": "service_role"} if kind == "tampered: role"
                   else {"sub": str(uuid.uuid4())} if kind == "tampered: sub"
                   else {"exp": now + 10 * 365 * 86400})
        return ".".join((header, _payload({**claims, **changed}), signature))
    other = {**claims, "iss": OTHER_ISSUER, "ref": "abcdefghijklmnopqrst",
             "iat": now, "exp": now + 3600}
    if kind == "another project, ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(other, key, algorithm="ES256", headers={"kid": str(uuid.uuid4())})
    if kind == "another project, ES256 under our kid":
        token = _token(stack, user, "another project, ES256")
        signing = stack.config.jwt_keys.signing
        return rewrite_header(token, kid=signing.kid) if signing is not None else token
    if kind == "another project, HS256":
        return jwt.encode(other, "super-secret-jwt-token-with-at-least-32-characters-long!",
                          algorithm="HS256")
    raise AssertionError(kind)


# Not here: `iat` in the future. PostgREST and Storage refuse it, but GoTrue (jwt/v5
# without WithIssuedAt) and the API's TokenVerifier (verify_iat off: a server whose clock
# lags Auth's must not refuse fresh tokens) accept it; `nbf` is the claim that says
# "not yet".
KINDS = ["not yet valid", "tampered: role", "tampered: sub", "tampered: exp",
         "another project, ES256", "another project, ES256 under our kid",
         "another project, HS256"]
SERVICES = ["rest", "storage", "auth", "api"]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_tokens_the_project_never_issued_are_refused(
    stack: RunningStack, user: User, kind: str, service: str
) -> None:
    token = _token(stack, user, kind)
    api = stack.config.api_url
    headers = {"apikey": stack.publishable_key, "Authorization": f"Bearer {token}"}
    url = {"rest": f"{api}/rest/v1/users?select=id", "storage": f"{api}/storage/v1/bucket",
           "auth": f"{api}/auth/v1/user", "api": f"{api}/functions/v1/get-video-jobs"}[service]
    response = httpx.get(url, headers=headers, timeout=30)
    if service == "rest":
        assert response.status_code == 401, response.text
    elif service == "storage":  # AccessDenied: HTTP 400 with the status in the body
        assert response.status_code == 400, response.text
        assert response.json()["statusCode"] == "403", response.text
    elif service == "auth":
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "bad_jwt", response.text
    else:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized", response.text


def test_the_users_own_token_passes_everywhere(stack: RunningStack, user: User) -> None:
    """The control: the same requests with the token Auth issued succeed."""
    api = stack.config.api_url
    headers = {"apikey": stack.publishable_key, "Authorization": f"Bearer {user.token}"}
    for url in (f"{api}/rest/v1/users?select=id", f"{api}/storage/v1/bucket",
                f"{api}/auth/v1/user", f"{api}/functions/v1/get-video-jobs"):
        assert httpx.get(url, headers=headers, timeout=30).status_code == 200, url
