"""Email confirmations: what GoTrue mails on a sign-up or an email change, and `POST
/verify`, which takes the link's token hash or the code back (`mail.go`, `verify.go`).

The stack has no mailer: where GoTrue sends an email, the Auth service logs it (the
gateway's log) with the code and the link's `token_hash`, and stores what GoTrue stores:
the hash `sha224(address + code)` in the user's token column and the time it was sent.
Tests, like a developer reading the log, confirm with `POST /verify {type, token_hash}`
(the hash is also in `auth.users`) or `{type, email, token}`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from ..auth_settings import AuthSettings
from . import _store as store
from ._accounts import apply_email_change
from ._context import AuthContext, Conn
from ._errors import ApiError, bad_request, forbidden, unprocessable
from ._params import json_body, text, validate_email

if TYPE_CHECKING:
    from ._tokens import TokenEndpoints

log = logging.getLogger("rendio.local.auth")

_OTP_DIGITS = 6
_SINGLE_CONFIRMATION = ("Confirmation link accepted. Please proceed to confirm link sent to "
                        "the other email")
_LINK_EXPIRED = "Email link is invalid or has expired"
_TOKEN_EXPIRED = "Token has expired or is invalid"
# The token columns `verifyTokenHash` looks in, by verification type.
_HASH_COLUMNS: dict[str, tuple[str, ...]] = {
    "signup": ("confirmation_token",), "invite": ("confirmation_token",),
    "email": ("confirmation_token", "recovery_token"),
    "recovery": ("recovery_token",), "magiclink": ("recovery_token",),
    "email_change": ("email_change_token_current", "email_change_token_new"),
}
_SENT_AT = {"confirmation_token": "confirmation_sent_at", "recovery_token": "recovery_sent_at",
            "email_change_token_current": "email_change_sent_at",
            "email_change_token_new": "email_change_sent_at"}


def token_hash(address: str, otp: str) -> str:
    """GoTrue's `GenerateTokenHash`: what the link carries and the user row stores."""
    return hashlib.sha224((address + otp).encode()).hexdigest()


def _otp() -> str:
    return f"{secrets.randbelow(10 ** _OTP_DIGITS):0{_OTP_DIGITS}d}"


def _not_too_soon(sent_at: datetime | None, settings: AuthSettings) -> None:
    """`validateSentWithinFrequencyLimit`: one email per `max_frequency` seconds."""
    if sent_at is None:
        return
    left = sent_at + timedelta(seconds=settings.max_frequency) - datetime.now(UTC)
    if left > timedelta(0):
        raise ApiError(429, "over_email_send_rate_limit", "For security purposes, you can only "
                       f"request this after {int(left.total_seconds())} seconds.")


def _mail(kind: str, address: str, otp: str, hashed: str) -> None:
    log.warning("auth: %s email to %s (no mailer here): code %s, token_hash %s",
                kind, address, otp, hashed)


async def send_confirmation(conn: Conn, user: store.Row, settings: AuthSettings) -> None:
    """`sendConfirmation`: a new sign-up code for the user's address."""
    _not_too_soon(user["confirmation_sent_at"], settings)
    otp = _otp()
    hashed = token_hash(user["email"], otp)
    await store.update_user(conn, user["id"], {"confirmation_token": hashed,
                                               "confirmation_sent_at": datetime.now(UTC)})
    _mail("confirmation", user["email"], otp, hashed)


async def send_email_change(conn: Conn, user: store.Row, email: str,
                            settings: AuthSettings) -> None:
    """`sendEmailChange`: `email` becomes the pending `new_email`, with a code for it and,
    when changes are double-confirmed, one for the current address."""
    _not_too_soon(user["email_change_sent_at"], settings)
    otp_new = _otp()
    values: dict[str, Any] = {
        "email_change": email, "email_change_token_new": token_hash(email, otp_new),
        "email_change_token_current": "", "email_change_confirm_status": 0,
        "email_change_sent_at": datetime.now(UTC)}
    if settings.double_confirm_changes and user["email"]:
        otp_current = _otp()
        values["email_change_token_current"] = token_hash(user["email"], otp_current)
        _mail("email change (current address)", user["email"], otp_current,
              values["email_change_token_current"])
    await store.update_user(conn, user["id"], values)
    _mail("email change", email, otp_new, values["email_change_token_new"])


@dataclass(frozen=True)
class VerifyEndpoints:
    """`POST /verify`: a code or link hash for a sign-up or an email change."""

    context: AuthContext
    # A verified link opens a session as every grant does.
    tokens: TokenEndpoints

    async def verify(self, request: Request) -> Response:
        self.context.rate_limit(self.context.limits.verify, request)
        body = await json_body(request)
        kind, token, hashed = text(body, "type"), text(body, "token"), text(body, "token_hash")
        email, phone = text(body, "email"), text(body, "phone")
        if not kind:
            raise bad_request("validation_failed", "Verify requires a verification type")
        if bool(token) == bool(hashed):
            raise bad_request("validation_failed",
                              "Verify requires either a token or a token hash")
        by_hash = not token
        if by_hash and (email or phone or text(body, "redirect_to")):
            raise bad_request("validation_failed",
                              "Only the token_hash and type should be provided")
        if not by_hash:
            if phone and not email:  # no SMS here, so no phone code was ever sent
                raise forbidden("otp_expired", _TOKEN_EXPIRED)
            if not email or phone:
                raise bad_request("validation_failed", "Only an email address or phone "
                                  "number should be provided on verify")
            try:
                email = validate_email(email)
            except ApiError:
                raise unprocessable("validation_failed", "Invalid email format") from None
            hashed = token_hash(email, token)
        if kind not in _HASH_COLUMNS:
            if by_hash:
                raise bad_request("validation_failed", "Invalid email verification type")
            raise bad_request("validation_failed", "Unsupported verification type")
        async with self.context.transaction() as conn:
            user, column = await self._find(conn, kind, hashed, email, by_hash)
            response = await self._confirm(conn, request, user, column)
        return json_response(response)

    async def _find(self, conn: Conn, kind: str, hashed: str, email: str,
                    by_hash: bool) -> tuple[store.Row, str]:
        """The user a hash names and the column it was found in, or GoTrue's 403."""
        expired = _LINK_EXPIRED if by_hash else _TOKEN_EXPIRED
        user = await store.find_user_by_token(conn, _HASH_COLUMNS[kind], hashed)
        if user is None or (not by_hash and email not in (user["email"], user["email_change"])):
            raise forbidden("otp_expired", expired)
        if store.is_banned(user):
            raise forbidden("user_banned", "User is banned")
        column = next(c for c in _HASH_COLUMNS[kind] if user[c] == hashed)
        sent_at: datetime | None = user[_SENT_AT[column]]
        if sent_at is None or datetime.now(UTC) > sent_at + timedelta(
                seconds=self.context.settings.otp_expiry):
            raise forbidden("otp_expired", expired)
        return user, column

    async def _confirm(self, conn: Conn, request: Request, user: store.Row,
                       column: str) -> dict[str, Any]:
        """Act on a verified hash: confirm the sign-up or (the last step of) the email
        change, then open a session (`amr` "otp"), as `verifyPost` does."""
        settings = self.context.settings
        if column == "confirmation_token":
            await store.confirm_email(conn, user)
            for identity in await store.identities_of(conn, user["id"]):
                if identity["email"] and identity["email"] == (user["email"] or "").lower():
                    await store.update_identity_data(conn, identity, {"email_verified": True})
            await store.update_app_metadata_providers(conn, user)
        elif column.startswith("email_change"):
            if (settings.enable_confirmations and settings.double_confirm_changes
                    and user["email_change_confirm_status"] == 0 and user["email"]):
                await store.update_user(conn, user["id"], {
                    "email_change_confirm_status": 1, column: ""})
                return {"msg": _SINGLE_CONFIRMATION, "code": "200"}
            await apply_email_change(conn, user, user["email_change"])  # providers too
        else:
            raise forbidden("otp_expired", _LINK_EXPIRED)  # no recovery links are sent here
        return await self.tokens.issue_session(conn, request, user["id"], "otp")
