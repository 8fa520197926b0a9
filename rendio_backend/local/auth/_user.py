"""The signed-in user: `GET /user` and `PUT /user` (`user.go`)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from . import _store as store
from ._accounts import apply_email_change
from ._confirm import send_email_change
from ._context import DUPLICATE_EMAIL, AuthContext, password_reset_columns
from ._crypto import check_password_strength, hash_password, verify_password
from ._errors import bad_request, forbidden, phone_disabled, unprocessable
from ._params import json_body, mapping, text, validate_email


@dataclass(frozen=True)
class UserEndpoints:
    """`GET /user` and `PUT /user`, for the user a Bearer token names."""

    context: AuthContext

    async def get_user(self, request: Request) -> Response:
        async with self.context.connection() as conn:
            caller = await self.context.authenticate(request, conn)
            aud = caller.claims.get("aud")
            token_aud = aud[0] if isinstance(aud, list) and aud else aud
            if token_aud != self.context.request_aud(request, caller.claims):
                raise bad_request("validation_failed",
                                  "Token audience doesn't match request audience")
            return json_response(store.user_json(
                caller.user, await store.identities_of(conn, caller.user["id"])))

    async def update_user(self, request: Request) -> Response:
        body = await json_body(request)
        email = text(body, "email")
        raw_password = body.get("password")
        password = raw_password if isinstance(raw_password, str) else None
        data, app_data = mapping(body, "data"), mapping(body, "app_metadata")
        if email:
            email = validate_email(email)
        if text(body, "phone"):
            raise phone_disabled("Unsupported phone provider")
        if password is not None:
            check_password_strength(password)
        async with self.context.connection() as conn:
            caller = await self.context.authenticate(request, conn)
        # GoTrue limits PUT /user with the sign-up limit (its OTP limiter).
        self.context.rate_limit(self.context.limits.sign_ups, request)
        user = caller.user
        aud = self.context.request_aud(request, caller.claims)
        if app_data is not None and user["role"] != "admin":
            raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
        if user["is_anonymous"] and password and not email:
            raise unprocessable("validation_failed", "Updating password of an anonymous user "
                                                     "without an email or phone is not allowed")
        hashed: str | None = None
        if password:
            if await verify_password(password, user["encrypted_password"]):
                raise unprocessable("same_password",
                                    "New password should be different from the old password.")
            hashed = await hash_password(password)
        async with self.context.transaction() as conn:
            user = await store.find_user(conn, user["id"], lock=True) or user
            email_changes = bool(email) and email != (user["email"] or "")
            if email_changes and await store.find_duplicate_email(conn, email, aud,
                                                                  exclude=user["id"]):
                raise unprocessable("email_exists", DUPLICATE_EMAIL)
            if hashed is not None:
                await store.update_user(conn, user["id"], password_reset_columns(hashed))
                # A new password ends every other session, as GoTrue's UpdatePassword does.
                if caller.session is not None:
                    await store.logout_others(conn, caller.session["id"], user["id"])
                else:
                    await store.logout_user(conn, user["id"])
            if data is not None:
                await store.merge_metadata(conn, user, "raw_user_meta_data", data)
            if email_changes:
                # Only a guest without confirmations takes an address at once; anyone
                # else keeps `email` and gets `new_email` until the links are followed.
                if user["is_anonymous"] and not self.context.settings.enable_confirmations:
                    await apply_email_change(conn, user, email)
                else:
                    await send_email_change(conn, user, email, self.context.settings)
            response = await self.context.user_json(conn, user["id"])
        return json_response(response)

