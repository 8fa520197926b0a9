"""Who calls: every app route needs `Authorization: Bearer <Supabase access token>`,
verified locally (signature through the project's JWKS or secret, exp, aud, role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import AuthError
from ..tokens import AccessClaims
from .errors import ApiError
from .runtime import Runtime, get_runtime

_bearer = HTTPBearer(auto_error=False, description="A Supabase Auth access token.")


@dataclass(frozen=True)
class Caller:
    claims: AccessClaims
    token: str

    @property
    def user_id(self) -> UUID:
        sub: UUID = self.claims.sub
        return sub


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message,
                    headers={"WWW-Authenticate": 'Bearer realm="rendio"'})


async def current_caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("an Authorization: Bearer access token is required")
    try:
        claims = await runtime.verifier.verify(credentials.credentials)
    except AuthError as exc:
        raise _unauthorized(exc.message) from None
    return Caller(claims=claims, token=credentials.credentials)


CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentRuntime = Annotated[Runtime, Depends(get_runtime)]
