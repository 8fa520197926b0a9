"""`/admin/users`: GoTrue's admin API (`admin.go`), for tokens with an admin role."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response, service_path
from ..keys import b64url
from . import _store as store
from ._accounts import set_email_identity
from ._context import DEFAULT_ROLE, DUPLICATE_EMAIL, AuthContext, Conn, password_reset_columns
from ._crypto import check_password_strength, hash_password, is_bcrypt_hash, random_password
from ._errors import bad_request, internal, not_found, phone_disabled, unprocessable
from ._params import json_body, mapping, parse_go_duration, parse_uuid, text, validate_email


@dataclass(frozen=True)
class AdminEndpoints:
    """List, read, create, update and delete users."""

    context: AuthContext

    async def list_users(self, request: Request) -> Response:
        page, per_page = (_page_parameter(request, "page", 1),
                          _page_parameter(request, "per_page", 50))
        # gobuffalo/pop's paginator bounds.
        page, per_page = max(page, 1), per_page if per_page >= 1 else 20
        async with self.context.connection() as conn:
            claims = await self.context.require_admin(request, conn)
            aud = self.context.request_aud(request, claims)
            rows, total = await store.list_users(
                conn, aud=aud, page=page, per_page=per_page,
                filter_text=request.query_params.get("filter", ""))
            users = [store.user_json(r, await store.identities_of(conn, r["id"])) for r in rows]
        headers = {"Link": _pagination_link(request, page, per_page, total),
                   "X-Total-Count": str(total)}
        return json_response({"users": users, "aud": aud}, headers=headers)

    async def get_user(self, request: Request) -> Response:
        async with self.context.connection() as conn:
            user = await self._load_target(request, conn)
            return json_response(store.user_json(
                user, await store.identities_of(conn, user["id"])))

    async def create_user(self, request: Request) -> Response:
        async with self.context.connection() as conn:
            claims = await self.context.require_admin(request, conn)
        body = await json_body(request)
        aud = text(body, "aud") or self.context.request_aud(request, claims)
        email, phone = text(body, "email"), text(body, "phone")
        password, password_hash = body.get("password"), text(body, "password_hash")
        if not email and not phone:
            raise bad_request("validation_failed",
                              "Cannot create a user without either an email or phone")
        if phone:
            raise phone_disabled("Unsupported phone provider")
        email = validate_email(email)
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
        async with self.context.transaction() as conn:
            if await store.find_duplicate_email(conn, email, aud):
                raise unprocessable("email_exists", DUPLICATE_EMAIL)
            try:
                await store.insert_user(
                    conn, user_id=user_id, aud=aud, email=email, encrypted_password=hashed,
                    app_metadata={"provider": "email", "providers": ["email"]},
                    user_metadata=mapping(body, "user_metadata") or {})
                await store.insert_identity(conn, user_id=user_id, provider="email",
                                            identity_data={"sub": str(user_id), "email": email,
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
                if ban is not None:
                    await store.update_user(conn, user_id, {"banned_until": ban[0]})
            except psycopg.Error as exc:
                raise internal("Database error creating new user") from exc
            response = await self.context.user_json(conn, user_id)
        return json_response(response)

    async def update_user(self, request: Request) -> Response:
        async with self.context.connection() as conn:
            target = await self._load_target(request, conn)
        body = await json_body(request)
        email = text(body, "email")
        password = body.get("password")
        if email:
            email = validate_email(email)
        if text(body, "phone"):
            raise phone_disabled("Unsupported phone provider")
        ban = _ban_until(text(body, "ban_duration"))
        hashed: str | None = None
        if isinstance(password, str):
            check_password_strength(password)
            hashed = await hash_password(password)
        email_confirm = body.get("email_confirm") is True
        try:
            async with self.context.transaction() as conn:
                user = await store.find_user(conn, target["id"], lock=True)
                if user is None:
                    raise not_found("user_not_found", "User not found")
                if text(body, "role"):
                    await store.update_user(conn, user["id"], {"role": text(body, "role")})
                if email_confirm:
                    await store.confirm_email(conn, user)
                if hashed is not None:
                    await store.update_user(conn, user["id"], password_reset_columns(hashed))
                    await store.logout_user(conn, user["id"])
                if email:
                    await _set_email(conn, user, email, confirmed=email_confirm)
                app_metadata = mapping(body, "app_metadata")
                if app_metadata is not None:
                    await store.merge_metadata(conn, user, "raw_app_meta_data", app_metadata)
                user_metadata = mapping(body, "user_metadata")
                if user_metadata is not None:
                    await store.merge_metadata(conn, user, "raw_user_meta_data", user_metadata)
                if ban is not None:
                    await store.update_user(conn, user["id"], {"banned_until": ban[0]})
                response = await self.context.user_json(conn, user["id"])
        except psycopg.Error as exc:
            raise internal("Error updating user") from exc
        return json_response(response)

    async def delete_user(self, request: Request) -> Response:
        async with self.context.connection() as conn:
            user = await self._load_target(request, conn)
        body = await json_body(request, optional=True)
        soft = body.get("should_soft_delete") is True
        async with self.context.transaction() as conn:
            if not soft:
                try:
                    await store.delete_user(conn, user["id"])
                except psycopg.Error as exc:
                    raise internal("Database error deleting user") from exc
            elif user["deleted_at"] is None:
                await _soft_delete(conn, user)
        return json_response({})

    async def _load_target(self, request: Request, conn: Conn) -> store.Row:
        """The user the path names, once the caller is known to be an admin."""
        await self.context.require_admin(request, conn)
        user_id = parse_uuid(request.path_params["user_id"],
                             not_found("validation_failed", "user_id must be an UUID"))
        user = await store.find_user(conn, user_id)
        if user is None:
            raise not_found("user_not_found", "User not found")
        return user


async def _set_email(conn: Conn, user: store.Row, email: str, *, confirmed: bool) -> None:
    """An admin's new email for the user: confirmed only when the admin says so."""
    await set_email_identity(conn, user, email, verified=confirmed)
    if user["is_anonymous"] and confirmed:
        await store.update_user(conn, user["id"], {"is_anonymous": False})
    await store.update_user(conn, user["id"], {"email": email})


def _page_parameter(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise bad_request("validation_failed", "Bad Pagination Parameters: "
                          f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    return int(raw)


def _pagination_link(request: Request, page: int, per_page: int, total: int) -> str:
    """GoTrue's `Link` header (paths relative to the service, as GoTrue sees them), its
    query encoded as Go's `url.Values.Encode` does: keys sorted, repeated ones kept."""
    pages = total // per_page + (1 if total % per_page else 0)
    path = service_path(request)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def link(to_page: int, rel: str) -> str:
        pairs = sorted([*query, ("page", str(to_page))], key=lambda pair: pair[0])
        return f'<{path}?{urlencode(pairs)}>; rel="{rel}"'

    links = [link(page + 1, "next")] if pages > page else []
    links.append(link(pages, "last"))
    return ", ".join(links)


def _ban_until(ban_duration: str) -> tuple[datetime | None] | None:
    """None: leave the ban as is; `(None,)`: lift it; `(t,)`: banned until t."""
    if not ban_duration:
        return None
    duration = timedelta(0) if ban_duration == "none" else parse_go_duration(ban_duration)
    return (None,) if duration == timedelta(0) else (datetime.now(UTC) + duration,)


async def _soft_delete(conn: Conn, user: store.Row) -> None:
    """`SoftDeleteUser`: obfuscate contact data and identities, drop secrets, end sessions."""
    def obfuscate(value: str | None, user_id: object = user["id"]) -> str:
        if not value:
            return ""
        digest = hashlib.sha256(f"{user_id}{value}".encode()).digest()
        return b64url(digest)
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
        await store.set_identity_provider_id(conn, identity, obfuscate(
            f"{identity['provider']}:{identity['provider_id']}", identity["user_id"]))
    await store.logout_user(conn, user["id"])
