"""The local Auth service: the subset of GoTrue (supabase/auth) that Supabase clients call.

Routes, request and response JSON, JWT claims, status codes and error bodies follow
supabase/auth `internal/api/*.go`. Locally, email and phone sign-ups are confirmed at
once (GoTrue with `MAILER_AUTOCONFIRM` / `SMS_AUTOCONFIRM`), anonymous sign-ins and Sign
in with Apple (against `config.apple_issuer`) are enabled, and refresh tokens are the
legacy rotating kind (a parent chain in `auth.refresh_tokens`) with GoTrue's reuse
interval. All writes go through PostgreSQL as `supabase_auth_admin`, so triggers on
`auth.users` run with the same rights as on hosted Supabase.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..config import StackConfig
from . import _store as store
from ._apple import AppleVerifier
from ._crypto import (
    check_password_strength,
    hash_password,
    is_bcrypt_hash,
    new_refresh_token,
    random_password,
    verify_password,
)
from ._errors import (
    ApiError,
    OAuthError,
    WeakPasswordError,
    bad_request,
    error_response,
    forbidden,
    internal,
    not_found,
    unprocessable,
)
from ._jwt import bearer_token, decode_token, sign_access_token
from ._params import (
    json_body,
    mapping,
    parse_go_duration,
    parse_uuid,
    text,
    validate_email,
    validate_phone,
)

DEFAULT_AUD = "authenticated"
DEFAULT_ROLE = "authenticated"
# GOTRUE_JWT_ADMIN_ROLES on hosted Supabase.
ADMIN_ROLES = ("service_role", "supabase_admin")
# The Supabase CLI's `[auth] refresh_token_reuse_interval` (seconds).
DEFAULT_REUSE_INTERVAL = 10
APPLE = "apple"
# Providers GoTrue knows for id_token sign-in, all disabled here except Apple.
_OIDC_ISSUERS = {
    "google": "https://accounts.google.com",
    "azure": "https://login.microsoftonline.com/common/v2.0",
    "facebook": "https://www.facebook.com",
    "kakao": "https://kauth.kakao.com",
    "keycloak": "",
    "snapchat": "https://accounts.snapchat.com",
}
_DUPLICATE_EMAIL = "A user with this email address has already been registered"
_DUPLICATE_PHONE = "A user with this phone number has already been registered"
_INVALID_LOGIN = "Invalid login credentials"
_LEGACY_REFRESH_TOKEN = re.compile(r"[a-z0-9]{12}")

Handler = Callable[[Request], Awaitable[Response]]
Conn = AsyncConnection[DictRow]


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _client_ip(request: Request) -> str | None:
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    candidate = forwarded or (request.client.host if request.client else "")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class _Caller:
    """Who a Bearer token says is calling (GoTrue's requireAuthentication)."""

    def __init__(self, claims: dict[str, Any], user: store.Row,
                 session: store.Row | None) -> None:
        self.claims = claims
        self.user = user
        self.session = session


class AuthService:
    """GoTrue-compatible Auth as an ASGI app plus start/stop hooks (a `LocalService`)."""

    def __init__(self, config: StackConfig, *,
                 refresh_token_reuse_interval: int = DEFAULT_REUSE_INTERVAL) -> None:
        self.config = config
        self.reuse_interval = refresh_token_reuse_interval
        self.apple = AppleVerifier(issuer=config.apple_issuer, jwks_url=config.apple_jwks_url,
                                   client_ids=config.apple_client_ids)
        self._pool: AsyncConnectionPool[Conn] | None = None
        routes = [
            Route("/health", self._endpoint(self.health), methods=["GET"]),
            Route("/settings", self._endpoint(self.settings), methods=["GET"]),
            Route("/.well-known/jwks.json", self._endpoint(self.jwks), methods=["GET"]),
            Route("/signup", self._endpoint(self.signup), methods=["POST"]),
            Route("/token", self._endpoint(self.token), methods=["POST"]),
            Route("/user", self._endpoint(self.get_user), methods=["GET"]),
            Route("/user", self._endpoint(self.update_user), methods=["PUT"]),
            Route("/logout", self._endpoint(self.logout), methods=["POST"]),
            Route("/admin/users", self._endpoint(self.admin_list_users), methods=["GET"]),
            Route("/admin/users", self._endpoint(self.admin_create_user), methods=["POST"]),
            Route("/admin/users/{user_id}", self._endpoint(self.admin_get_user),
                  methods=["GET"]),
            Route("/admin/users/{user_id}", self._endpoint(self.admin_update_user),
                  methods=["PUT"]),
            Route("/admin/users/{user_id}", self._endpoint(self.admin_delete_user),
                  methods=["DELETE"]),
        ]
        self.app = Starlette(routes=routes, exception_handlers={
            HTTPException: self._http_exception,
        })

    # --- lifecycle ---------------------------------------------------------------------
    async def startup(self) -> None:
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

    async def shutdown(self) -> None:
        """Close the pool and the JWKS client."""
        await self.apple.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise RuntimeError("the auth service was used before startup()")
        async with self._pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    # --- plumbing ----------------------------------------------------------------------
    def _endpoint(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure leaves as GoTrue's JSON, no traceback
                return error_response(exc, request)
        return run

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        # chi's answers for unknown routes and methods.
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return Response(status_code=405)
        return PlainTextResponse("404 page not found\n", status_code=404)

    def _request_aud(self, request: Request, claims: dict[str, Any] | None) -> str:
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

    async def _authenticate(self, request: Request, conn: Conn) -> _Caller:
        claims = decode_token(bearer_token(request.headers.get("authorization")),
                              self.config.jwt_secret)
        return await self._load_caller(claims, conn)

    async def _load_caller(self, claims: dict[str, Any], conn: Conn) -> _Caller:
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
        return _Caller(claims, user, session)

    async def _require_admin(self, request: Request, conn: Conn) -> dict[str, Any]:
        claims = decode_token(bearer_token(request.headers.get("authorization")),
                              self.config.jwt_secret)
        if claims.get("session_id"):
            caller = await self._load_caller(claims, conn)
            if caller.session is not None and _session_expired(caller.session):
                raise forbidden("session_expired", "Session is no longer valid")
        if claims.get("role") not in ADMIN_ROLES:
            raise forbidden("not_admin", "User not allowed")
        return claims

    async def _user_json(self, conn: Conn, user_id: uuid.UUID | str) -> dict[str, Any]:
        user = await store.find_user(conn, user_id)
        if user is None:
            raise not_found("user_not_found", "User not found")
        return store.user_json(user, await store.identities_of(conn, user_id))

    async def _token_response(self, conn: Conn, user_id: uuid.UUID | str,
                              session_id: uuid.UUID | str, refresh_token: str) -> dict[str, Any]:
        """GoTrue's AccessTokenResponse, with the user as it now is in the database."""
        user = await self._user_json(conn, user_id)
        session = await store.find_session(conn, session_id)
        aal = (session or {}).get("aal") or "aal1"
        now = int(time.time())
        token, expires_at = sign_access_token(
            secret=self.config.jwt_secret, issuer=self.config.auth_url, user=user,
            session_id=str(session_id), amr=await store.amr_of(conn, session_id), aal=str(aal),
            issued_at=now, expires_in=self.config.jwt_expiry)
        return {"access_token": token, "token_type": "bearer", "expires_in": expires_at - now,
                "expires_at": expires_at, "refresh_token": refresh_token, "user": user}

    async def _issue_session(self, conn: Conn, request: Request, user_id: uuid.UUID | str,
                             method: str) -> dict[str, Any]:
        """A new session and refresh token (`IssueRefreshToken` with legacy tokens)."""
        session_id = await store.create_session(
            conn, user_id=user_id, user_agent=request.headers.get("user-agent"),
            ip=_client_ip(request))
        refresh_token = new_refresh_token()
        await store.insert_refresh_token(conn, token=refresh_token, user_id=user_id,
                                         session_id=session_id, parent=None)
        await store.update_user(conn, user_id, {"last_sign_in_at": datetime.now(UTC)})
        await store.add_amr_claim(conn, session_id, method)
        return await self._token_response(conn, user_id, session_id, refresh_token)

    async def _create_user(self, conn: Conn, *, user_id: uuid.UUID, aud: str,
                           email: str | None, phone: str | None, encrypted_password: str,
                           app_metadata: dict[str, Any], user_metadata: dict[str, Any],
                           is_anonymous: bool = False, role: str = DEFAULT_ROLE) -> None:
        """`signupNewUser`: insert, then set the role in a second statement."""
        try:
            await store.insert_user(
                conn, user_id=user_id, aud=aud, email=email, phone=phone,
                encrypted_password=encrypted_password, app_metadata=app_metadata,
                user_metadata=user_metadata, is_anonymous=is_anonymous)
        except psycopg.Error as exc:
            raise internal("Database error saving new user") from exc
        try:
            await store.update_user(conn, user_id, {"role": role})
        except psycopg.Error as exc:
            raise internal("Database error updating user") from exc

    # --- open endpoints ----------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return _json({"version": "rendio-local", "name": "GoTrue",
                      "description": "GoTrue is a user registration and authentication API"})

    async def settings(self, request: Request) -> Response:
        providers = ["anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook",
                     "snapchat", "figma", "fly", "github", "gitlab", "google", "keycloak",
                     "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack",
                     "slack_oidc", "workos", "twitch", "twitter", "email", "phone", "zoom"]
        enabled = {"anonymous_users", "apple", "email", "phone"}
        return _json({
            "external": {name: name in enabled for name in providers},
            "disable_signup": False,
            "mailer_autoconfirm": True,
            "phone_autoconfirm": True,
            "sms_provider": "twilio",
            "saml_enabled": False,
            "saml_private_key_next_configured": False,
            "passkeys_enabled": False,
        })

    async def jwks(self, request: Request) -> Response:
        # HS256 secrets are never published, so GoTrue lists no keys.
        return _json({"keys": []}, headers={"Cache-Control": "public, max-age=600"})

    # --- sign-up -----------------------------------------------------------------------
    async def signup(self, request: Request) -> Response:
        body = await json_body(request)
        email, phone = text(body, "email"), text(body, "phone")
        data = mapping(body, "data") or {}
        aud = self._request_aud(request, None)
        if not email and not phone:
            return await self._signup_anonymous(request, aud, data)
        password = text(body, "password")
        if not password:
            raise bad_request("validation_failed", "Signup requires a valid password")
        check_password_strength(password)
        if email and phone:
            raise bad_request("validation_failed",
                              "Only an email address or phone number should be provided on "
                              "signup.")
        provider = "email" if email else "phone"
        if email:
            email = validate_email(email)
        else:
            phone = validate_phone(phone)
        # Hash before the transaction: bcrypt is slow and must not hold a connection.
        hashed = await hash_password(password)
        async with self._transaction() as conn:
            existing = (await store.find_duplicate_email(conn, email, aud) if email
                        else await store.find_user_by_phone(conn, phone, aud))
            if existing is not None:
                confirmed = existing["email_confirmed_at" if email else "phone_confirmed_at"]
                if confirmed:
                    raise unprocessable("user_already_exists", "User already registered")
                user_id = existing["id"]
            else:
                user_id = uuid.uuid4()
                await self._create_user(
                    conn, user_id=user_id, aud=aud, email=email or None, phone=phone or None,
                    encrypted_password=hashed,
                    app_metadata={"provider": provider, "providers": [provider]},
                    user_metadata=data)
            if await store.find_identity(conn, str(user_id), provider) is None:
                identity_data: dict[str, Any] = {"sub": str(user_id), "email_verified": False,
                                                 "phone_verified": False}
                if email:
                    identity_data["email"] = email
                for key, value in data.items():
                    identity_data.setdefault(key, value)
                await store.insert_identity(conn, user_id=user_id, provider=provider,
                                            identity_data=identity_data)
            user = await store.find_user(conn, user_id)
            assert user is not None
            if email and not user["email_confirmed_at"]:
                await store.confirm_email(conn, user)
            elif phone and not user["phone_confirmed_at"]:
                await store.confirm_phone(conn, user)
            response = await self._issue_session(conn, request, user_id, "password")
        return _json(response)

    async def _signup_anonymous(self, request: Request, aud: str,
                                data: dict[str, Any]) -> Response:
        try:
            async with self._transaction() as conn:
                user_id = uuid.uuid4()
                await self._create_user(conn, user_id=user_id, aud=aud, email=None, phone=None,
                                        encrypted_password="", app_metadata={},
                                        user_metadata=data, is_anonymous=True)
                response = await self._issue_session(conn, request, user_id, "anonymous")
        except (ApiError, psycopg.Error) as exc:
            raise internal("Database error creating anonymous user") from exc
        return _json(response)

    # --- /token ------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        grant_type = request.query_params.get("grant_type", "")
        if grant_type == "password":
            return await self._password_grant(request)
        if grant_type == "refresh_token":
            return await self._refresh_grant(request)
        if grant_type == "id_token":
            return await self._id_token_grant(request)
        raise bad_request("invalid_credentials", "unsupported_grant_type")

    async def _password_grant(self, request: Request) -> Response:
        body = await json_body(request)
        email, phone, password = text(body, "email"), text(body, "phone"), text(body, "password")
        if email and phone:
            raise bad_request("validation_failed",
                              "Only an email address or phone number should be provided on "
                              "login.")
        aud = self._request_aud(request, None)
        async with self._connection() as conn:
            if email:
                user = await store.find_user_by_email(conn, email, aud)
            elif phone:
                user = await store.find_user_by_phone(
                    conn, phone.replace("+", "").replace(" ", ""), aud)
            else:
                raise bad_request("validation_failed", "missing email or phone")
        if user is None or not user["encrypted_password"]:
            raise bad_request("invalid_credentials", _INVALID_LOGIN)
        if store.is_banned(user):
            raise bad_request("user_banned", "User is banned")
        if not await verify_password(password, user["encrypted_password"]):
            raise bad_request("invalid_credentials", _INVALID_LOGIN)
        weak: dict[str, Any] | None = None
        try:
            check_password_strength(password)
        except WeakPasswordError as exc:
            weak = {"message": exc.message, "reasons": exc.reasons}
        except ApiError:
            weak = None
        if email and not user["email_confirmed_at"]:
            raise bad_request("email_not_confirmed", "Email not confirmed")
        if phone and not user["phone_confirmed_at"]:
            raise bad_request("phone_not_confirmed", "Phone not confirmed")
        async with self._transaction() as conn:
            response = await self._issue_session(conn, request, user["id"], "password")
        if weak is not None:
            response["weak_password"] = weak
        return _json(response)

    async def _refresh_grant(self, request: Request) -> Response:
        body = await json_body(request)
        token = text(body, "refresh_token")
        if not _LEGACY_REFRESH_TOKEN.fullmatch(token):
            # Only GoTrue's legacy 12-character tokens are issued here.
            raise bad_request("validation_failed", "Refresh token is not valid")
        failure: ApiError | None = None
        response: dict[str, Any] | None = None
        async with self._transaction() as conn:
            row = await store.find_refresh_token(conn, token, lock=True)
            if row is None:
                raise bad_request("refresh_token_not_found",
                                  "Invalid Refresh Token: Refresh Token Not Found")
            user = await store.find_user(conn, row["user_id"])
            if user is None:
                raise bad_request("refresh_token_not_found",
                                  "Invalid Refresh Token: Refresh Token Not Found")
            if store.is_banned(user):
                raise bad_request("user_banned", "Invalid Refresh Token: User Banned")
            session = (await store.find_session(conn, row["session_id"], lock=True)
                       if row["session_id"] else None)
            if session is None:
                raise bad_request("session_not_found",
                                  "Invalid Refresh Token: No Valid Session Found")
            if _session_expired(session):
                raise bad_request("session_expired", "Invalid Refresh Token: Session Expired")
            issued = ""
            if row["revoked"]:
                active = await store.active_refresh_token(conn, session["id"])
                if active is not None and active["parent"] == row["token"]:
                    # The client lost the answer to its last refresh: hand it back.
                    issued = active["token"]
                else:
                    reuse_until = row["updated_at"] + timedelta(seconds=self.reuse_interval)
                    if datetime.now(UTC) > reuse_until:
                        # Reuse outside the interval: revoke the whole family, commit,
                        # then fail (GoTrue's CommitWithError).
                        await store.revoke_session_tokens(conn, session["id"])
                        failure = bad_request("refresh_token_already_used",
                                              "Invalid Refresh Token: Already Used")
            if failure is None:
                if not issued:
                    await store.revoke_refresh_token(conn, row["id"])
                    issued = new_refresh_token()
                    await store.insert_refresh_token(conn, token=issued, user_id=user["id"],
                                                     session_id=session["id"],
                                                     parent=row["token"])
                await store.touch_session(conn, session["id"],
                                          user_agent=request.headers.get("user-agent"),
                                          ip=_client_ip(request))
                response = await self._token_response(conn, user["id"], session["id"], issued)
        if failure is not None:
            raise failure
        assert response is not None
        return _json(response)

    async def _id_token_grant(self, request: Request) -> Response:
        body = await json_body(request)
        id_token, nonce = text(body, "id_token"), text(body, "nonce")
        provider, issuer = text(body, "provider"), text(body, "issuer")
        link = body.get("link_identity") is True
        if not id_token:
            raise OAuthError("invalid request", "id_token required")
        if not provider and (not text(body, "client_id") or not issuer):
            raise OAuthError("invalid request", "provider or client_id and issuer required")
        caller: _Caller | None = None
        if link:
            if not request.headers.get("authorization"):
                raise OAuthError("invalid request",
                                 "Linking requires a valid user access token in Authorization")
            async with self._connection() as conn:
                caller = await self._authenticate(request, conn)
        if provider != APPLE and issuer != self.config.apple_issuer:
            if provider in _OIDC_ISSUERS:
                raise bad_request("provider_disabled", f'Provider (issuer '
                                  f'"{_OIDC_ISSUERS[provider]}") is not enabled')
            raise bad_request("validation_failed", f'Custom OIDC provider "{provider}" not allowed')
        claims = await self.apple.verify(id_token, nonce)
        if issuer and issuer != claims["iss"]:
            raise bad_request("validation_failed", "Provided issuer does not match ID token issuer")
        metadata = _apple_identity_data(claims)
        aud = self._request_aud(request, None)
        async with self._transaction() as conn:
            if caller is not None:
                user_id = await self._link_identity(conn, caller.user, APPLE, metadata)
            else:
                user_id = await self._account_from_identity(conn, aud, APPLE, metadata)
            response = await self._issue_session(conn, request, user_id, "oauth")
        return _json(response)

    async def _account_from_identity(self, conn: Conn, aud: str, provider: str,
                                     metadata: dict[str, Any]) -> uuid.UUID:
        """`createAccountFromExternalIdentity` with GoTrue's automatic linking by email."""
        email = str(metadata.get("email") or "")
        identity = await store.find_identity(conn, str(metadata["sub"]), provider)
        user: store.Row | None
        if identity is not None:
            user = await store.find_user(conn, identity["user_id"], lock=True)
            assert user is not None
            await store.update_identity_data(conn, identity, metadata, replace=True,
                                             sign_in=True)
            await store.merge_metadata(conn, user, "raw_user_meta_data", metadata)
            await store.update_app_metadata_providers(conn, user)
        else:
            user = await self._linking_candidate(conn, email, aud) if email else None
            if user is not None:
                await store.insert_identity(conn, user_id=user["id"], provider=provider,
                                            identity_data=metadata)
                await store.merge_metadata(conn, user, "raw_user_meta_data", metadata)
                await store.update_app_metadata_providers(conn, user)
            else:
                user_id = uuid.uuid4()
                await self._create_user(
                    conn, user_id=user_id, aud=aud, email=email or None, phone=None,
                    encrypted_password="",
                    app_metadata={"provider": provider, "providers": [provider]},
                    user_metadata=metadata)
                await store.insert_identity(conn, user_id=user_id, provider=provider,
                                            identity_data=metadata)
                user = await store.find_user(conn, user_id)
                assert user is not None
        if store.is_banned(user):
            raise forbidden("user_banned", "User is banned")
        if not user["email_confirmed_at"] and not user["phone_confirmed_at"]:
            # Apple vouches for the email, so GoTrue confirms the account.
            await store.confirm_email(conn, user)
        return uuid.UUID(str(user["id"]))

    async def _linking_candidate(self, conn: Conn, email: str, aud: str) -> store.Row | None:
        """The one existing user a verified email links to (`DetermineAccountLinking`)."""
        similar = [i for i in await store.identities_with_emails(conn, [email.lower()])
                   if not str(i["provider"]).startswith("sso:")]
        owners = {str(i["user_id"]) for i in similar}
        if len(owners) > 1:
            raise internal("Multiple accounts with the same email address in the same "
                           "linking domain detected: default")
        if owners:
            return await store.find_user(conn, owners.pop(), lock=True)
        return await store.find_user_by_email(conn, email, aud)

    async def _link_identity(self, conn: Conn, target: store.Row, provider: str,
                             metadata: dict[str, Any]) -> uuid.UUID:
        """`linkIdentityToUser`: attach the identity to the caller (same user id)."""
        existing = await store.find_identity(conn, str(metadata["sub"]), provider)
        if existing is not None:
            if str(existing["user_id"]) == str(target["id"]):
                raise unprocessable("identity_already_exists", "Identity is already linked")
            raise unprocessable("identity_already_exists",
                                "Identity is already linked to another user")
        user = await store.find_user(conn, target["id"], lock=True)
        assert user is not None
        await store.insert_identity(conn, user_id=user["id"], provider=provider,
                                    identity_data=metadata)
        if not user["email"]:
            await self._promote_identity_email(conn, user)
            await store.confirm_email(conn, user)
            if user["is_anonymous"]:
                await store.update_user(conn, user["id"], {"is_anonymous": False})
        await store.update_app_metadata_providers(conn, user)
        return uuid.UUID(str(user["id"]))

    async def _promote_identity_email(self, conn: Conn, user: store.Row) -> None:
        """`UpdateUserEmailFromIdentities`: give an email-less user an identity's email."""
        identities = await store.identities_of(conn, user["id"])
        if any(not i["email"] for i in identities):
            return  # an identity without email matches the user's empty email
        ranked = sorted(identities, key=lambda i: 0 if (i["identity_data"] or {}).get(
            "email_verified") is True else 1)
        for identity in ranked:
            taken = await store.find_user_by_email(conn, identity["email"], user["aud"])
            if taken is None:
                await store.update_user(conn, user["id"], {"email": identity["email"]})
                user["email"] = identity["email"]
                return
        raise bad_request("email_exists", _DUPLICATE_EMAIL)

    # --- the signed-in user ------------------------------------------------------------
    async def get_user(self, request: Request) -> Response:
        async with self._connection() as conn:
            caller = await self._authenticate(request, conn)
            aud = caller.claims.get("aud")
            token_aud = aud[0] if isinstance(aud, list) and aud else aud
            if token_aud != self._request_aud(request, caller.claims):
                raise bad_request("validation_failed",
                                  "Token audience doesn't match request audience")
            return _json(store.user_json(caller.user,
                                         await store.identities_of(conn, caller.user["id"])))

    async def update_user(self, request: Request) -> Response:
        body = await json_body(request)
        email, phone = text(body, "email"), text(body, "phone")
        raw_password = body.get("password")
        password = raw_password if isinstance(raw_password, str) else None
        data, app_data = mapping(body, "data"), mapping(body, "app_metadata")
        if email:
            email = validate_email(email)
        if phone:
            phone = validate_phone(phone)
        if password is not None:
            check_password_strength(password)
        async with self._connection() as conn:
            caller = await self._authenticate(request, conn)
        user = caller.user
        aud = self._request_aud(request, caller.claims)
        if app_data is not None and user["role"] != "admin":
            raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
        if user["is_anonymous"] and password and not email and not phone:
            raise unprocessable("validation_failed", "Updating password of an anonymous user "
                                                     "without an email or phone is not allowed")
        hashed: str | None = None
        if password:
            if await verify_password(password, user["encrypted_password"]):
                raise unprocessable("same_password",
                                    "New password should be different from the old password.")
            hashed = await hash_password(password)
        async with self._transaction() as conn:
            user = await store.find_user(conn, user["id"], lock=True) or user
            if email and email != (user["email"] or ""):
                if await store.find_duplicate_email(conn, email, aud, exclude=user["id"]):
                    raise unprocessable("email_exists", _DUPLICATE_EMAIL)
            if phone and phone != (user["phone"] or ""):
                if await store.find_user_by_phone(conn, phone, aud):
                    raise unprocessable("phone_exists", _DUPLICATE_PHONE)
            if hashed is not None:
                await store.update_user(conn, user["id"], _password_reset_columns(hashed))
                # A new password ends every other session, as GoTrue's UpdatePassword does.
                if caller.session is not None:
                    await store.logout_others(conn, caller.session["id"], user["id"])
                else:
                    await store.logout_user(conn, user["id"])
            if data is not None:
                await store.merge_metadata(conn, user, "raw_user_meta_data", data)
            # No mailer or SMS locally: changes apply at once, as if confirmed.
            if email and email != (user["email"] or ""):
                await self._set_contact(conn, user, "email", email)
            if phone and phone != (user["phone"] or ""):
                await self._set_contact(conn, user, "phone", phone)
            response = await self._user_json(conn, user["id"])
        return _json(response)

    async def _set_contact(self, conn: Conn, user: store.Row, kind: str, value: str) -> None:
        """Set a confirmed email or phone and its identity; an anonymous user becomes
        permanent, as after GoTrue's email change / phone change verification."""
        if kind == "email":
            await store.update_user(conn, user["id"], {"email": value, "email_change": ""})
            if not user["email_confirmed_at"] and not user["phone_confirmed_at"]:
                await store.confirm_email(conn, user)  # `ConfirmEmailChange`
        else:
            await store.update_user(conn, user["id"], {"phone": value, "phone_change": "",
                                                       "phone_confirmed_at": datetime.now(UTC)})
        provider = "email" if kind == "email" else "phone"
        identity = await store.find_identity(conn, str(user["id"]), provider)
        if identity is None:
            data: dict[str, Any] = {"sub": str(user["id"]), kind: value,
                                    "email_verified": kind == "email",
                                    "phone_verified": kind == "phone"}
            await store.insert_identity(conn, user_id=user["id"], provider=provider,
                                        identity_data=data)
        else:
            await store.update_identity_data(conn, identity, {kind: value,
                                                              f"{kind}_verified": True})
        if user["is_anonymous"]:
            await store.update_user(conn, user["id"], {"is_anonymous": False})
        await store.update_app_metadata_providers(conn, user)

    async def logout(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "")
        if scope not in {"", "global", "local", "others"}:
            raise bad_request("validation_failed", f'Unsupported logout scope "{scope}"')
        async with self._transaction() as conn:
            caller = await self._authenticate(request, conn)
            try:
                if caller.session is not None and scope == "local":
                    await store.logout_session(conn, caller.session["id"])
                elif caller.session is not None and scope == "others":
                    await store.logout_others(conn, caller.session["id"], caller.user["id"])
                else:
                    await store.logout_user(conn, caller.user["id"])
            except psycopg.Error as exc:
                raise internal("Error logging out user") from exc
        return Response(status_code=204)

    # --- admin -------------------------------------------------------------------------
    async def admin_list_users(self, request: Request) -> Response:
        page, per_page = (_page_parameter(request, "page", 1),
                          _page_parameter(request, "per_page", 50))
        # gobuffalo/pop's paginator bounds.
        page, per_page = max(page, 1), per_page if per_page >= 1 else 20
        async with self._connection() as conn:
            claims = await self._require_admin(request, conn)
            aud = self._request_aud(request, claims)
            rows, total = await store.list_users(
                conn, aud=aud, page=page, per_page=per_page,
                filter_text=request.query_params.get("filter", ""))
            users = [store.user_json(r, await store.identities_of(conn, r["id"])) for r in rows]
        headers = {"Link": _pagination_link(request, page, per_page, total),
                   "X-Total-Count": str(total)}
        return _json({"users": users, "aud": aud}, headers=headers)

    async def _load_admin_target(self, request: Request, conn: Conn) -> store.Row:
        await self._require_admin(request, conn)
        user_id = parse_uuid(request.path_params["user_id"],
                             not_found("validation_failed", "user_id must be an UUID"))
        user = await store.find_user(conn, user_id)
        if user is None:
            raise not_found("user_not_found", "User not found")
        return user

    async def admin_get_user(self, request: Request) -> Response:
        async with self._connection() as conn:
            user = await self._load_admin_target(request, conn)
            return _json(store.user_json(user, await store.identities_of(conn, user["id"])))

    async def admin_create_user(self, request: Request) -> Response:
        async with self._connection() as conn:
            claims = await self._require_admin(request, conn)
        body = await json_body(request)
        aud = text(body, "aud") or self._request_aud(request, claims)
        email, phone = text(body, "email"), text(body, "phone")
        password, password_hash = body.get("password"), text(body, "password_hash")
        if not email and not phone:
            raise bad_request("validation_failed",
                              "Cannot create a user without either an email or phone")
        providers: list[str] = []
        if email:
            email = validate_email(email)
            providers.append("email")
        if phone:
            phone = validate_phone(phone)
            providers.append("phone")
        if password is not None and password_hash:
            raise bad_request("validation_failed",
                              "Only a password or a password hash should be provided")
        if password_hash:
            if not is_bcrypt_hash(password_hash):
                raise internal("Error creating user")
            hashed = password_hash
        else:
            plain = password if isinstance(password, str) and password else random_password()
            hashed = await hash_password(plain)
        user_id = uuid.uuid4()
        if text(body, "id"):
            user_id = parse_uuid(text(body, "id"), bad_request(
                "validation_failed", "ID must conform to the uuid v4 format"))
            if user_id.int == 0:
                raise bad_request("validation_failed", "ID cannot be a nil uuid")
        ban = _ban_until(text(body, "ban_duration"))
        app_metadata = mapping(body, "app_metadata")
        async with self._transaction() as conn:
            if email and await store.find_duplicate_email(conn, email, aud):
                raise unprocessable("email_exists", _DUPLICATE_EMAIL)
            if phone and await store.find_user_by_phone(conn, phone, aud):
                raise unprocessable("phone_exists",
                                    "Phone number already registered by another user")
            try:
                await store.insert_user(
                    conn, user_id=user_id, aud=aud, email=email or None, phone=phone or None,
                    encrypted_password=hashed,
                    app_metadata={"provider": providers[0], "providers": providers},
                    user_metadata=mapping(body, "user_metadata") or {})
                if email:
                    await store.insert_identity(conn, user_id=user_id, provider="email",
                                                identity_data={"sub": str(user_id),
                                                               "email": email,
                                                               "email_verified": False,
                                                               "phone_verified": False})
                if phone:
                    await store.insert_identity(conn, user_id=user_id, provider="phone",
                                                identity_data={"sub": str(user_id),
                                                               "phone": phone,
                                                               "email_verified": False,
                                                               "phone_verified": False})
                await store.update_user(conn, user_id,
                                        {"role": text(body, "role") or DEFAULT_ROLE})
                user = await store.find_user(conn, user_id)
                assert user is not None
                if app_metadata is not None:
                    await store.merge_metadata(conn, user, "raw_app_meta_data", app_metadata)
                if body.get("email_confirm") is True:
                    await store.confirm_email(conn, user)
                if body.get("phone_confirm") is True:
                    await store.confirm_phone(conn, user)
                if ban is not None:
                    await store.update_user(conn, user_id, {"banned_until": ban[0]})
            except psycopg.Error as exc:
                raise internal("Database error creating new user") from exc
            response = await self._user_json(conn, user_id)
        return _json(response)

    async def admin_update_user(self, request: Request) -> Response:
        async with self._connection() as conn:
            target = await self._load_admin_target(request, conn)
        body = await json_body(request)
        email, phone = text(body, "email"), text(body, "phone")
        password = body.get("password")
        if email:
            email = validate_email(email)
        if phone:
            phone = validate_phone(phone)
        ban = _ban_until(text(body, "ban_duration"))
        hashed: str | None = None
        if isinstance(password, str):
            check_password_strength(password)
            hashed = await hash_password(password)
        email_confirm, phone_confirm = body.get("email_confirm") is True, \
            body.get("phone_confirm") is True
        try:
            async with self._transaction() as conn:
                user = await store.find_user(conn, target["id"], lock=True)
                if user is None:
                    raise not_found("user_not_found", "User not found")
                if text(body, "role"):
                    await store.update_user(conn, user["id"], {"role": text(body, "role")})
                if email_confirm:
                    await store.confirm_email(conn, user)
                if phone_confirm:
                    await store.confirm_phone(conn, user)
                if hashed is not None:
                    await store.update_user(conn, user["id"], _password_reset_columns(hashed))
                    await store.logout_user(conn, user["id"])
                for kind, value, confirm in (("email", email, email_confirm),
                                             ("phone", phone, phone_confirm)):
                    if value:
                        await self._admin_set_contact(conn, user, kind, value, confirm)
                app_metadata = mapping(body, "app_metadata")
                if app_metadata is not None:
                    await store.merge_metadata(conn, user, "raw_app_meta_data", app_metadata)
                user_metadata = mapping(body, "user_metadata")
                if user_metadata is not None:
                    await store.merge_metadata(conn, user, "raw_user_meta_data", user_metadata)
                if ban is not None:
                    await store.update_user(conn, user["id"], {"banned_until": ban[0]})
                response = await self._user_json(conn, user["id"])
        except psycopg.Error as exc:
            raise internal("Error updating user") from exc
        return _json(response)

    async def _admin_set_contact(self, conn: Conn, user: store.Row, kind: str, value: str,
                                 confirmed: bool) -> None:
        provider = "email" if kind == "email" else "phone"
        identity = await store.find_identity(conn, str(user["id"]), provider)
        if identity is None:
            data: dict[str, Any] = {"sub": str(user["id"]), kind: value,
                                    "email_verified": confirmed and kind == "email",
                                    "phone_verified": confirmed and kind == "phone"}
            await store.insert_identity(conn, user_id=user["id"], provider=provider,
                                        identity_data=data)
        else:
            await store.update_identity_data(conn, identity, {kind: value,
                                                              f"{kind}_verified": confirmed})
        if user["is_anonymous"] and confirmed:
            await store.update_user(conn, user["id"], {"is_anonymous": False})
        await store.update_user(conn, user["id"], {kind: value})

    async def admin_delete_user(self, request: Request) -> Response:
        async with self._connection() as conn:
            user = await self._load_admin_target(request, conn)
        body = await json_body(request, optional=True)
        soft = body.get("should_soft_delete") is True
        async with self._transaction() as conn:
            if not soft:
                try:
                    await store.delete_user(conn, user["id"])
                except psycopg.Error as exc:
                    raise internal("Database error deleting user") from exc
            elif user["deleted_at"] is None:
                await _soft_delete(conn, user)
        return _json({})


# --- helpers ---------------------------------------------------------------------------
def _page_parameter(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise bad_request("validation_failed", "Bad Pagination Parameters: "
                          f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    return int(raw)


def _session_expired(session: store.Row) -> bool:
    not_after: datetime | None = session.get("not_after")
    return not_after is not None and datetime.now(UTC) > not_after


def _password_reset_columns(hashed: str) -> dict[str, object]:
    """`User.UpdatePassword`: the new hash, and pending tokens no longer trusted."""
    return {"encrypted_password": hashed, "confirmation_token": "", "confirmation_sent_at": None,
            "recovery_token": "", "recovery_sent_at": None, "email_change_token_current": "",
            "email_change_token_new": "", "email_change_sent_at": None,
            "phone_change_token": "", "phone_change_sent_at": None,
            "reauthentication_token": "", "reauthentication_sent_at": None}


def _ban_until(ban_duration: str) -> tuple[datetime | None] | None:
    """None: leave the ban as is; `(None,)`: lift it; `(t,)`: banned until t."""
    if not ban_duration:
        return None
    duration = timedelta(0) if ban_duration == "none" else parse_go_duration(ban_duration)
    return (None,) if duration == timedelta(0) else (datetime.now(UTC) + duration,)


def _pagination_link(request: Request, page: int, per_page: int, total: int) -> str:
    """GoTrue's `Link` header (paths relative to the service, as GoTrue sees them)."""
    pages = total // per_page + (1 if total % per_page else 0)
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    query = dict(request.query_params)
    links = []
    if pages > page:
        links.append(f'<{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
    links.append(f'<{path}?{urlencode({**query, "page": pages})}>; rel="last"')
    return ", ".join(links)


def _apple_identity_data(claims: dict[str, Any]) -> dict[str, Any]:
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


async def _soft_delete(conn: Conn, user: store.Row) -> None:
    """`SoftDeleteUser`: obfuscate contact data and identities, drop secrets, end sessions."""
    def obfuscate(value: str | None, user_id: object = user["id"]) -> str:
        if not value:
            return ""
        digest = hashlib.sha256(f"{user_id}{value}".encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    await store.update_user(conn, user["id"], {
        "email": obfuscate(user["email"]) or None,
        "phone": obfuscate(user["phone"])[:15] or None,
        "email_change": obfuscate(user["email_change"]),
        "phone_change": obfuscate(user["phone_change"])[:15],
        "encrypted_password": None, "confirmation_token": "", "recovery_token": "",
        "email_change_token_current": "", "email_change_token_new": "",
        "phone_change_token": "", "deleted_at": datetime.now(UTC)})
    for identity in await store.identities_of(conn, user["id"]):
        await store.update_identity_data(conn, identity, {}, replace=True)
        provider_id = obfuscate(f"{identity['provider']}:{identity['provider_id']}",
                                identity["user_id"])
        await conn.execute("update auth.identities set provider_id = %s where id = %s",
                           (provider_id, identity["id"]))
    await store.logout_user(conn, user["id"])


def create_auth_service(config: StackConfig) -> AuthService:
    """The local Auth service for `config`; mount `.app` at `/auth/v1`."""
    return AuthService(config)


