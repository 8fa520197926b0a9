"""Sessions: sign-up (email and anonymous), `/token`'s grants (password, refresh_token,
id_token for Sign in with Apple) and logout (`signup.go`, `token.go`, `logout.go`).

Refresh tokens are the legacy rotating kind (a parent chain in `auth.refresh_tokens`)
with GoTrue's reuse interval.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from . import _store as store
from ._accounts import account_from_identity, create_user, link_identity
from ._apple import apple_identity_data
from ._confirm import send_confirmation
from ._context import SIGNUP_DISABLED, AuthContext, Caller, Conn, client_ip, session_expired
from ._crypto import check_password_strength, hash_password, new_refresh_token, verify_password
from ._errors import (
    ApiError,
    OAuthError,
    WeakPasswordError,
    bad_request,
    internal,
    phone_disabled,
    unprocessable,
)
from ._jwt import sign_access_token
from ._params import json_body, mapping, text, validate_email

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
_INVALID_LOGIN = "Invalid login credentials"
_LEGACY_REFRESH_TOKEN = re.compile(r"[a-z0-9]{12}")


@dataclass(frozen=True)
class TokenEndpoints:
    """`POST /signup`, `POST /token` and `POST /logout`."""

    context: AuthContext

    # --- sign-up -----------------------------------------------------------------------
    async def signup(self, request: Request) -> Response:
        body = await json_body(request)
        email, phone = text(body, "email"), text(body, "phone")
        data = mapping(body, "data") or {}
        aud = self.context.request_aud(request, None)
        settings, limits = self.context.settings, self.context.limits
        if not email and not phone:
            if not settings.enable_anonymous_sign_ins:
                raise unprocessable("anonymous_provider_disabled",
                                    "Anonymous sign-ins are disabled")
            self.context.rate_limit(limits.anonymous, request)
            if not settings.enable_signup:
                raise unprocessable("signup_disabled", SIGNUP_DISABLED)
            return await self._signup_anonymous(request, aud, data)
        self.context.rate_limit(limits.sign_ups, request)
        if not settings.enable_signup:
            raise unprocessable("signup_disabled", SIGNUP_DISABLED)
        password = text(body, "password")
        if not password:
            raise bad_request("validation_failed", "Signup requires a valid password")
        check_password_strength(password)
        if email and phone:
            raise bad_request("validation_failed",
                              "Only an email address or phone number should be provided on "
                              "signup.")
        if phone:
            raise phone_disabled("Phone signups are disabled")
        email = validate_email(email)
        # Hash before the transaction: bcrypt is slow and must not hold a connection.
        hashed = await hash_password(password)
        async with self.context.transaction() as conn:
            existing = await store.find_duplicate_email(conn, email, aud)
            if existing is not None:
                if existing["email_confirmed_at"]:
                    if not settings.enable_confirmations:
                        raise unprocessable("user_already_exists", "User already registered")
                    # Never tell who is registered: a made-up unconfirmed user, as
                    # GoTrue's `sanitizeUser` answers when confirmations are on.
                    return json_response(_obfuscated_user(existing, aud, data))
                # Password and metadata stay as they are: nobody proved the address yet.
                user_id = existing["id"]
            else:
                user_id = uuid.uuid4()
                await create_user(
                    conn, user_id=user_id, aud=aud, email=email, encrypted_password=hashed,
                    app_metadata={"provider": "email", "providers": ["email"]},
                    user_metadata=data)
            if await store.find_identity(conn, str(user_id), "email") is None:
                identity_data: dict[str, Any] = {"sub": str(user_id), "email_verified": False,
                                                 "phone_verified": False, "email": email}
                for key, value in data.items():
                    identity_data.setdefault(key, value)
                await store.insert_identity(conn, user_id=user_id, provider="email",
                                            identity_data=identity_data)
            user = await store.find_user(conn, user_id)
            assert user is not None
            if settings.enable_confirmations:
                # The user waits for the confirmation link: no session yet.
                await send_confirmation(conn, user, settings)
                return json_response(await self.context.user_json(conn, user_id))
            # MAILER_AUTOCONFIRM (the CLI's config.toml): confirmed at once, signed in.
            if not user["email_confirmed_at"]:
                await store.confirm_email(conn, user)
            response = await self.issue_session(conn, request, user_id, "password")
        return json_response(response)

    async def _signup_anonymous(self, request: Request, aud: str,
                                data: dict[str, Any]) -> Response:
        try:
            async with self.context.transaction() as conn:
                user_id = uuid.uuid4()
                await create_user(conn, user_id=user_id, aud=aud, email=None,
                                  encrypted_password="", app_metadata={},
                                  user_metadata=data, is_anonymous=True)
                response = await self.issue_session(conn, request, user_id, "anonymous")
        except (ApiError, psycopg.Error) as exc:
            raise internal("Database error creating anonymous user") from exc
        return json_response(response)

    # --- /token ------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        grant_type = request.query_params.get("grant_type", "")
        if grant_type in ("password", "refresh_token", "id_token"):
            self.context.rate_limit(self.context.limits.token, request)
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
        if phone:
            raise phone_disabled("Phone logins are disabled")
        if not email:
            raise bad_request("validation_failed", "missing email or phone")
        aud = self.context.request_aud(request, None)
        async with self.context.connection() as conn:
            user = await store.find_user_by_email(conn, email, aud)
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
        if not user["email_confirmed_at"]:
            raise bad_request("email_not_confirmed", "Email not confirmed")
        async with self.context.transaction() as conn:
            response = await self.issue_session(conn, request, user["id"], "password")
        if weak is not None:
            response["weak_password"] = weak
        return json_response(response)

    async def _refresh_grant(self, request: Request) -> Response:
        body = await json_body(request)
        token = text(body, "refresh_token")
        if not _LEGACY_REFRESH_TOKEN.fullmatch(token):
            # Only GoTrue's legacy 12-character tokens are issued here.
            raise bad_request("validation_failed", "Refresh token is not valid")
        failure: ApiError | None = None
        response: dict[str, Any] | None = None
        async with self.context.transaction() as conn:
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
            if session_expired(session):
                raise bad_request("session_expired", "Invalid Refresh Token: Session Expired")
            issued = ""
            if row["revoked"]:
                active = await store.active_refresh_token(conn, session["id"])
                if active is not None and active["parent"] == row["token"]:
                    # The client lost the answer to its last refresh: hand it back.
                    issued = active["token"]
                else:
                    reuse_until = row["updated_at"] + timedelta(
                        seconds=self.context.reuse_interval)
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
                                          ip=client_ip(request))
                response = await self._token_response(conn, user["id"], session["id"], issued)
        if failure is not None:
            raise failure
        assert response is not None
        return json_response(response)

    async def _id_token_grant(self, request: Request) -> Response:
        body = await json_body(request)
        id_token, nonce = text(body, "id_token"), text(body, "nonce")
        provider, issuer = text(body, "provider"), text(body, "issuer")
        link = body.get("link_identity") is True
        if not id_token:
            raise OAuthError("invalid request", "id_token required")
        if not provider and (not text(body, "client_id") or not issuer):
            raise OAuthError("invalid request", "provider or client_id and issuer required")
        caller: Caller | None = None
        if link:
            if not request.headers.get("authorization"):
                raise OAuthError("invalid request",
                                 "Linking requires a valid user access token in Authorization")
            async with self.context.connection() as conn:
                caller = await self.context.authenticate(request, conn)
        if provider != APPLE and issuer != self.context.config.apple_issuer:
            if provider in _OIDC_ISSUERS:
                raise bad_request("provider_disabled", f'Provider (issuer '
                                  f'"{_OIDC_ISSUERS[provider]}") is not enabled')
            raise bad_request("validation_failed", f'Custom OIDC provider "{provider}" not allowed')
        claims = await self.context.apple.verify(id_token, nonce)
        if issuer and issuer != claims["iss"]:
            raise bad_request("validation_failed", "Provided issuer does not match ID token issuer")
        metadata = apple_identity_data(claims)
        aud = self.context.request_aud(request, None)
        async with self.context.transaction() as conn:
            if caller is not None:
                user_id = await link_identity(conn, caller.user, APPLE, metadata)
            else:
                user_id = await account_from_identity(
                    conn, aud, APPLE, metadata, allow_signup=self.context.settings.enable_signup)
            response = await self.issue_session(conn, request, user_id, "oauth")
        return json_response(response)

    # --- logout ------------------------------------------------------------------------
    async def logout(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "")
        if scope not in {"", "global", "local", "others"}:
            raise bad_request("validation_failed", f'Unsupported logout scope "{scope}"')
        async with self.context.transaction() as conn:
            caller = await self.context.authenticate(request, conn)
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

    # --- sessions ----------------------------------------------------------------------
    async def issue_session(self, conn: Conn, request: Request, user_id: uuid.UUID | str,
                            method: str) -> dict[str, Any]:
        """A new session and refresh token (`IssueRefreshToken` with legacy tokens)."""
        session_id = await store.create_session(
            conn, user_id=user_id, user_agent=request.headers.get("user-agent"),
            ip=client_ip(request))
        refresh_token = new_refresh_token()
        await store.insert_refresh_token(conn, token=refresh_token, user_id=user_id,
                                         session_id=session_id, parent=None)
        await store.update_user(conn, user_id, {"last_sign_in_at": datetime.now(UTC)})
        await store.add_amr_claim(conn, session_id, method)
        return await self._token_response(conn, user_id, session_id, refresh_token)

    async def _token_response(self, conn: Conn, user_id: uuid.UUID | str,
                              session_id: uuid.UUID | str, refresh_token: str) -> dict[str, Any]:
        """GoTrue's AccessTokenResponse, with the user as it now is in the database."""
        config = self.context.config
        user = await self.context.user_json(conn, user_id)
        session = await store.find_session(conn, session_id)
        aal = (session or {}).get("aal") or "aal1"
        now = int(time.time())
        token, expires_at = sign_access_token(
            keys=self.context.keys, issuer=config.auth_url, user=user,
            session_id=str(session_id), amr=await store.amr_of(conn, session_id), aal=str(aal),
            issued_at=now, expires_in=config.jwt_expiry)
        return {"access_token": token, "token_type": "bearer", "expires_in": expires_at - now,
                "expires_at": expires_at, "refresh_token": refresh_token, "user": user}


def _obfuscated_user(existing: store.Row, aud: str, data: dict[str, Any]) -> dict[str, Any]:
    """`sanitizeUser`: the existing user's shape with a new id and nothing it holds."""
    now = store.timestamp(datetime.now(UTC))
    user = store.user_json(existing, [])
    for key in ("new_email", "last_sign_in_at", "confirmed_at", "email_change_sent_at",
                "email_confirmed_at", "phone_confirmed_at"):
        user.pop(key, None)
    user.update(id=str(uuid.uuid4()), aud=aud, role="", phone="", user_metadata=data,
                app_metadata={"provider": "email", "providers": ["email"]}, identities=[],
                created_at=now, updated_at=now, confirmation_sent_at=now)
    return user
