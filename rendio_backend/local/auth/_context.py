"""What every Auth endpoint shares: the configuration, the connection pool, the Apple
verifier, and the steps most requests take (who is calling, for which audience, the
user's JSON as it now is in the database)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request

from ..config import StackConfig
from . import _store as store
from ._apple import AppleVerifier
from ._errors import bad_request, forbidden, not_found
from ._jwt import bearer_token, decode_token
from ._limits import Buckets, RateLimiter
from ._params import parse_uuid

DEFAULT_AUD = "authenticated"
DEFAULT_ROLE = "authenticated"
# GOTRUE_JWT_ADMIN_ROLES on hosted Supabase.
ADMIN_ROLES = ("service_role", "supabase_admin")
# The Supabase CLI's `[auth] refresh_token_reuse_interval` (seconds).
DEFAULT_REUSE_INTERVAL = 10
DUPLICATE_EMAIL = "A user with this email address has already been registered"
SIGNUP_DISABLED = "Signups not allowed for this instance"

Conn = AsyncConnection[DictRow]


@dataclass(frozen=True)
class Caller:
    """Who a Bearer token says is calling (GoTrue's requireAuthentication)."""

    claims: dict[str, Any]
    user: store.Row
    session: store.Row | None


class AuthContext:
    """The state Auth's endpoints share; `open()` before serving, `close()` after."""

    def __init__(self, config: StackConfig, *,
                 refresh_token_reuse_interval: int = DEFAULT_REUSE_INTERVAL) -> None:
        self.config = config
        self.keys = config.jwt_keys
        self.reuse_interval = refresh_token_reuse_interval
        self.settings = config.auth
        self.limits = RateLimiter(config.auth.rate_limits)
        self.apple = AppleVerifier(issuer=config.apple_issuer, jwks_url=config.apple_jwks_url,
                                   client_ids=config.apple_client_ids)
        self._pool: AsyncConnectionPool[Conn] | None = None

    async def open(self) -> None:
        """Open the connection pool (as `supabase_auth_admin`) and the JWKS client."""
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.config.role_db_url("supabase_auth_admin"), min_size=1, max_size=8,
            open=False, name="rendio-auth", connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            # A connection dropped by a database reset or restart is replaced, not used.
            check=AsyncConnectionPool.check_connection,
        )
        await pool.open(wait=True, timeout=30)
        self._pool = pool
        await self.apple.open()
        self.limits.announce()

    async def close(self) -> None:
        """Close the pool and the JWKS client."""
        await self.apple.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise RuntimeError("the auth service was used before startup()")
        async with self._pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    def request_aud(self, request: Request, claims: dict[str, Any] | None) -> str:
        header = request.headers.get("x-jwt-aud")
        if header:
            return header
        if claims is not None and claims.get("role") not in ADMIN_ROLES:
            aud = claims.get("aud")
            if isinstance(aud, list):
                aud = aud[0] if aud else ""
            if isinstance(aud, str) and aud:
                return aud
        return DEFAULT_AUD

    def rate_limit(self, buckets: Buckets, request: Request) -> None:
        """GoTrue's 429 once the caller's address has spent `buckets` (see `_limits`)."""
        self.limits.check(buckets, client_ip(request) or "")

    def bearer_claims(self, request: Request) -> dict[str, Any]:
        return decode_token(bearer_token(request.headers.get("authorization")), self.keys)

    async def authenticate(self, request: Request, conn: Conn) -> Caller:
        return await self.load_caller(self.bearer_claims(request), conn)

    async def load_caller(self, claims: dict[str, Any], conn: Conn) -> Caller:
        sub = claims.get("sub")
        if not sub:
            raise forbidden("bad_jwt", "invalid claim: missing sub claim")
        user_id = parse_uuid(str(sub), bad_request(
            "bad_jwt", "invalid claim: sub claim must be a UUID"))
        user = await store.find_user(conn, user_id)
        if user is None:
            raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
        session = None
        session_claim = str(claims.get("session_id") or "")
        if session_claim and session_claim != str(store.NIL_INSTANCE):
            session_id = parse_uuid(session_claim, forbidden(
                "bad_jwt", "invalid claim: session_id claim must be a UUID"))
            session = await store.find_session(conn, session_id)
            if session is None:
                raise forbidden("session_not_found",
                                "Session from session_id claim in JWT does not exist")
        if store.is_banned(user):
            raise forbidden("user_banned", "User is banned")
        return Caller(claims, user, session)

    async def require_admin(self, request: Request, conn: Conn) -> dict[str, Any]:
        """The claims of a token with an admin role (GoTrue's requireAdmin)."""
        claims = self.bearer_claims(request)
        if claims.get("session_id"):
            caller = await self.load_caller(claims, conn)
            if caller.session is not None and session_expired(caller.session):
                raise forbidden("session_expired", "Session is no longer valid")
        if claims.get("role") not in ADMIN_ROLES:
            raise forbidden("not_admin", "User not allowed")
        return claims

    async def user_json(self, conn: Conn, user_id: uuid.UUID | str) -> dict[str, Any]:
        user = await store.find_user(conn, user_id)
        if user is None:
            raise not_found("user_not_found", "User not found")
        return store.user_json(user, await store.identities_of(conn, user_id))


def client_ip(request: Request) -> str | None:
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    candidate = forwarded or (request.client.host if request.client else "")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def session_expired(session: store.Row) -> bool:
    not_after: datetime | None = session.get("not_after")
    return not_after is not None and datetime.now(UTC) > not_after


def password_reset_columns(hashed: str) -> dict[str, object]:
    """`User.UpdatePassword`: the new hash, and pending tokens no longer trusted."""
    return {"encrypted_password": hashed, "confirmation_token": "", "confirmation_sent_at": None,
            "recovery_token": "", "recovery_sent_at": None, "email_change_token_current": "",
            "email_change_token_new": "", "email_change_sent_at": None,
            "phone_change_token": "", "phone_change_sent_at": None,
            "reauthentication_token": "", "reauthentication_sent_at": None}
