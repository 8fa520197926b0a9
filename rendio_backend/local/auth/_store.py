"""Rows of GoTrue's tables (`auth.users`, `identities`, `sessions`, `refresh_tokens`,
`mfa_amr_claims`) and their JSON form (`internal/models/*.go`).

Every function takes the connection it runs on, so callers compose them into one
transaction. Writes mirror GoTrue's statement by statement where triggers could tell
the difference (a user is inserted with an empty `role`, which is set by a second
UPDATE, as `signupNewUser` does).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

Conn = AsyncConnection[DictRow]
Row = dict[str, Any]

# GoTrue still writes the nil instance id into every row.
NIL_INSTANCE = uuid.UUID(int=0)
_USER_COLUMNS = (
    "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, phone, "
    "phone_confirmed_at, confirmation_sent_at, recovery_sent_at, email_change, "
    "email_change_sent_at, phone_change, phone_change_sent_at, reauthentication_sent_at, "
    "last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, "
    "banned_until, deleted_at, is_anonymous, is_sso_user, confirmation_token, "
    "recovery_token, email_change_token_current, email_change_token_new, "
    "email_change_confirm_status"
)
# The columns holding the hash of an emailed link or code (`FindUserBy*Token`).
TOKEN_COLUMNS = ("confirmation_token", "recovery_token", "email_change_token_current",
                 "email_change_token_new")
_IDENTITY_COLUMNS = (
    "id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, "
    "updated_at, lower(identity_data->>'email') as email"
)


def timestamp(value: datetime | None) -> str | None:
    """A timestamp as Go's JSON encoder writes it (RFC 3339, UTC, `Z`)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def identity_json(row: Row) -> dict[str, Any]:
    """GoTrue's identity JSON (`identity_id` is the row id, `id` the provider's id)."""
    out: dict[str, Any] = {
        "identity_id": str(row["id"]),
        "id": row["provider_id"],
        "user_id": str(row["user_id"]),
        "identity_data": row["identity_data"] or {},
        "provider": row["provider"],
        "last_sign_in_at": timestamp(row["last_sign_in_at"]),
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }
    if out["last_sign_in_at"] is None:
        del out["last_sign_in_at"]
    if row["email"]:
        out["email"] = row["email"]
    return out


def user_json(row: Row, identities: list[Row]) -> dict[str, Any]:
    """GoTrue's user JSON: fields in `models.User` order, `omitempty` ones left out."""
    confirmed = [t for t in (row["email_confirmed_at"], row["phone_confirmed_at"]) if t]
    optional: dict[str, Any] = {
        "email_confirmed_at": timestamp(row["email_confirmed_at"]),
        "invited_at": timestamp(row["invited_at"]),
    }
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "aud": row["aud"] or "",
        "role": row["role"] or "",
        "email": row["email"] or "",
        **optional,
        "phone": row["phone"] or "",
        "phone_confirmed_at": timestamp(row["phone_confirmed_at"]),
        "confirmation_sent_at": timestamp(row["confirmation_sent_at"]),
        "confirmed_at": timestamp(min(confirmed)) if confirmed else None,
        "recovery_sent_at": timestamp(row["recovery_sent_at"]),
        "new_email": row["email_change"] or None,
        "email_change_sent_at": timestamp(row["email_change_sent_at"]),
        "new_phone": row["phone_change"] or None,
        "phone_change_sent_at": timestamp(row["phone_change_sent_at"]),
        "reauthentication_sent_at": timestamp(row["reauthentication_sent_at"]),
        "last_sign_in_at": timestamp(row["last_sign_in_at"]),
        "app_metadata": row["raw_app_meta_data"] or {},
        "user_metadata": row["raw_user_meta_data"] or {},
        "identities": [identity_json(i) for i in identities],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "banned_until": timestamp(row["banned_until"]),
        "deleted_at": timestamp(row["deleted_at"]),
        "is_anonymous": bool(row["is_anonymous"]),
    }
    always = {"id", "aud", "role", "email", "phone", "app_metadata", "user_metadata",
              "identities", "created_at", "updated_at", "is_anonymous"}
    return {k: v for k, v in out.items() if k in always or v is not None}


def is_banned(row: Row) -> bool:
    banned_until: datetime | None = row["banned_until"]
    return banned_until is not None and banned_until > datetime.now(UTC)


def _adapt(value: object) -> object:
    return Jsonb(value) if isinstance(value, dict | list) else value


# --- users -----------------------------------------------------------------------------
async def find_user(conn: Conn, user_id: uuid.UUID | str, *, lock: bool = False) -> Row | None:
    suffix = " for update" if lock else ""
    cur = await conn.execute(
        f"select {_USER_COLUMNS} from auth.users where id = %s{suffix}", (str(user_id),))
    return await cur.fetchone()


async def find_user_by_email(conn: Conn, email: str, aud: str) -> Row | None:
    cur = await conn.execute(
        f"select {_USER_COLUMNS} from auth.users where instance_id = %s and lower(email) = %s "
        "and aud = %s and is_sso_user = false", (NIL_INSTANCE, email.lower(), aud))
    return await cur.fetchone()


async def find_user_by_token(conn: Conn, columns: tuple[str, ...], token_hash: str,
                             ) -> Row | None:
    """The (non-SSO) user one of whose `columns` holds `token_hash`."""
    assert set(columns) <= set(TOKEN_COLUMNS)
    matches = " or ".join(f"{column} = %s" for column in columns)
    cur = await conn.execute(
        f"select {_USER_COLUMNS} from auth.users where ({matches}) and is_sso_user = false "
        "limit 1 for update", (token_hash,) * len(columns))
    return await cur.fetchone()


async def find_duplicate_email(conn: Conn, email: str, aud: str,
                               exclude: uuid.UUID | str | None = None) -> Row | None:
    """Another user of `aud` holding `email`, through an identity or directly."""
    cur = await conn.execute(
        f"select {_USER_COLUMNS} from auth.users u where u.aud = %s "
        "and u.id is distinct from %s and (u.id in (select i.user_id from auth.identities i "
        "where lower(i.identity_data->>'email') = %s and i.provider not like 'sso:%%') "
        "or (lower(u.email) = %s and u.is_sso_user = false)) limit 1",
        (aud, None if exclude is None else str(exclude), email.lower(), email.lower()))
    return await cur.fetchone()


async def insert_user(conn: Conn, *, user_id: uuid.UUID, aud: str, email: str | None,
                      encrypted_password: str, app_metadata: dict[str, Any],
                      user_metadata: dict[str, Any], is_anonymous: bool = False) -> None:
    """Insert as GoTrue's `tx.Create(user)` does: empty role and tokens, NULL for unset
    (`phone` always: there is no phone sign-up here)."""
    await conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, "
        "confirmation_token, recovery_token, email_change_token_new, email_change, "
        "email_change_token_current, email_change_confirm_status, phone, phone_change, "
        "phone_change_token, reauthentication_token, raw_app_meta_data, raw_user_meta_data, "
        "is_super_admin, is_sso_user, is_anonymous, created_at, updated_at) values "
        "(%s, %s, %s, '', %s, %s, '', '', '', '', '', 0, null, '', '', '', %s, %s, false, "
        "false, %s, now(), now())",
        (NIL_INSTANCE, user_id, aud, email or None, encrypted_password,
         Jsonb(app_metadata), Jsonb(user_metadata), is_anonymous))


async def update_user(conn: Conn, user_id: uuid.UUID | str, values: Mapping[str, object]) -> None:
    """`UPDATE auth.users` of the given columns (and `updated_at`, as pop's UpdateOnly)."""
    columns = ", ".join(f"{name} = %s" for name in values)
    await conn.execute(
        f"update auth.users set {columns}, updated_at = now() where id = %s",
        (*(_adapt(v) for v in values.values()), str(user_id)))


async def merge_metadata(conn: Conn, user: Row, column: str,
                         updates: Mapping[str, Any]) -> dict[str, Any]:
    """GoTrue's Update{User,App}MetaData: set keys, delete those given as null."""
    merged = dict(user[column] or {})
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    await update_user(conn, user["id"], {column: merged})
    user[column] = merged
    return merged


async def confirm_email(conn: Conn, user: Row) -> None:
    """`User.Confirm`: stamp `email_confirmed_at` and `email_verified` in the metadata."""
    await update_user(conn, user["id"], {"confirmation_token": "",
                                         "email_confirmed_at": datetime.now(UTC)})
    await merge_metadata(conn, user, "raw_user_meta_data", {"email_verified": True})


async def delete_user(conn: Conn, user_id: uuid.UUID | str) -> None:
    await conn.execute("delete from auth.users where id = %s", (str(user_id),))


async def list_users(conn: Conn, *, aud: str, page: int, per_page: int,
                     filter_text: str) -> tuple[list[Row], int]:
    """One page of users (newest first) and the total count, as `FindUsersInAudience`."""
    where = "instance_id = %s and aud = %s"
    params: list[object] = [NIL_INSTANCE, aud]
    if filter_text:
        where += " and (email like %s or raw_user_meta_data->>'full_name' ilike %s)"
        params += [f"%{filter_text}%", f"%{filter_text}%"]
    cur = await conn.execute(f"select count(*) as n from auth.users where {where}", params)
    counted = await cur.fetchone()
    cur = await conn.execute(
        f"select {_USER_COLUMNS} from auth.users where {where} order by created_at desc "
        "limit %s offset %s", [*params, per_page, (page - 1) * per_page])
    return await cur.fetchall(), int(counted["n"]) if counted else 0


# --- identities ------------------------------------------------------------------------
async def identities_of(conn: Conn, user_id: uuid.UUID | str) -> list[Row]:
    cur = await conn.execute(
        f"select {_IDENTITY_COLUMNS} from auth.identities where user_id = %s "
        "order by created_at, id", (str(user_id),))
    return await cur.fetchall()


async def find_identity(conn: Conn, provider_id: str, provider: str) -> Row | None:
    cur = await conn.execute(
        f"select {_IDENTITY_COLUMNS} from auth.identities where provider_id = %s "
        "and provider = %s", (provider_id, provider))
    return await cur.fetchone()


async def identities_with_emails(conn: Conn, emails: list[str]) -> list[Row]:
    cur = await conn.execute(
        f"select {_IDENTITY_COLUMNS} from auth.identities "
        "where lower(identity_data->>'email') = any(%s)", (emails,))
    return await cur.fetchall()


async def insert_identity(conn: Conn, *, user_id: uuid.UUID | str, provider: str,
                          identity_data: dict[str, Any]) -> None:
    """`NewIdentity` + create: `provider_id` is the data's `sub`, emails lower-cased."""
    data = dict(identity_data)
    if isinstance(data.get("email"), str):
        data["email"] = data["email"].lower()
    await conn.execute(
        "insert into auth.identities (id, provider_id, user_id, identity_data, provider, "
        "last_sign_in_at, created_at, updated_at) values (%s, %s, %s, %s, %s, now(), now(), "
        "now())", (uuid.uuid4(), str(data["sub"]), str(user_id), Jsonb(data), provider))


async def update_identity_data(conn: Conn, identity: Row, updates: Mapping[str, Any],
                               *, replace: bool = False, sign_in: bool = False) -> None:
    data = {} if replace else dict(identity["identity_data"] or {})
    for key, value in updates.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value.lower() if key == "email" and isinstance(value, str) else value
    stamp = ", last_sign_in_at = now()" if sign_in else ""
    await conn.execute(
        f"update auth.identities set identity_data = %s, updated_at = now(){stamp} "
        "where id = %s", (Jsonb(data), identity["id"]))


async def set_identity_provider_id(conn: Conn, identity: Row, provider_id: str) -> None:
    await conn.execute("update auth.identities set provider_id = %s where id = %s",
                       (provider_id, identity["id"]))


async def providers_of(conn: Conn, user_id: uuid.UUID | str) -> list[str]:
    """The user's identity providers, oldest first, each once (`FindProvidersByUser`)."""
    providers: list[str] = []
    for identity in await identities_of(conn, user_id):
        if identity["provider"] not in providers:
            providers.append(identity["provider"])
    return providers


async def update_app_metadata_providers(conn: Conn, user: Row) -> None:
    providers = await providers_of(conn, user["id"])
    payload: dict[str, Any] = {"providers": providers}
    if providers:
        payload["provider"] = providers[0]
    await merge_metadata(conn, user, "raw_app_meta_data", payload)


# --- sessions and refresh tokens -------------------------------------------------------
async def create_session(conn: Conn, *, user_id: uuid.UUID | str, user_agent: str | None,
                         ip: str | None) -> uuid.UUID:
    session_id = uuid.uuid4()
    await conn.execute(
        "insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip) "
        "values (%s, %s, now(), now(), 'aal1', %s, %s::inet)",
        (session_id, str(user_id), user_agent or None, ip or None))
    return session_id


async def find_session(conn: Conn, session_id: uuid.UUID | str, *,
                       lock: bool = False) -> Row | None:
    suffix = " for update" if lock else ""
    cur = await conn.execute(
        f"select id, user_id, created_at, not_after, aal from auth.sessions where id = %s{suffix}",
        (str(session_id),))
    return await cur.fetchone()


async def touch_session(conn: Conn, session_id: uuid.UUID | str, *, user_agent: str | None,
                        ip: str | None) -> None:
    await conn.execute(
        "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now(), "
        "user_agent = %s, ip = %s::inet where id = %s",
        (user_agent or None, ip or None, str(session_id)))


async def add_amr_claim(conn: Conn, session_id: uuid.UUID | str, method: str) -> None:
    await conn.execute(
        "insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, "
        "authentication_method) values (%s, %s, now(), now(), %s) "
        "on conflict (session_id, authentication_method) do update set updated_at = now()",
        (uuid.uuid4(), str(session_id), method))


async def amr_of(conn: Conn, session_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The session's `amr` claim: one entry per method, most recent first."""
    cur = await conn.execute(
        "select authentication_method, updated_at from auth.mfa_amr_claims "
        "where session_id = %s", (str(session_id),))
    entries = [{"method": r["authentication_method"], "timestamp": int(r["updated_at"].timestamp())}
               for r in await cur.fetchall()]
    return sorted(entries, key=lambda e: -int(e["timestamp"]))


async def logout_user(conn: Conn, user_id: uuid.UUID | str) -> None:
    await conn.execute("delete from auth.sessions where user_id = %s", (str(user_id),))


async def logout_session(conn: Conn, session_id: uuid.UUID | str) -> None:
    await conn.execute("delete from auth.sessions where id = %s", (str(session_id),))


async def logout_others(conn: Conn, session_id: uuid.UUID | str,
                        user_id: uuid.UUID | str) -> None:
    await conn.execute("delete from auth.sessions where id <> %s and user_id = %s",
                       (str(session_id), str(user_id)))


async def insert_refresh_token(conn: Conn, *, token: str, user_id: uuid.UUID | str,
                               session_id: uuid.UUID | str, parent: str | None) -> None:
    await conn.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, "
        "updated_at, parent, session_id) values (%s, %s, %s, false, now(), now(), %s, %s)",
        (NIL_INSTANCE, token, str(user_id), parent or "", str(session_id)))


async def find_refresh_token(conn: Conn, token: str, *, lock: bool = False) -> Row | None:
    suffix = " for update" if lock else ""
    cur = await conn.execute(
        "select id, token, user_id, parent, session_id, revoked, updated_at "
        f"from auth.refresh_tokens where token = %s{suffix}", (token,))
    return await cur.fetchone()


async def active_refresh_token(conn: Conn, session_id: uuid.UUID | str) -> Row | None:
    """The session's newest unrevoked token (`FindCurrentlyActiveRefreshToken`)."""
    cur = await conn.execute(
        "select id, token, parent from auth.refresh_tokens where session_id = %s "
        "and revoked is false order by id desc limit 1", (str(session_id),))
    return await cur.fetchone()


async def revoke_refresh_token(conn: Conn, token_id: int) -> None:
    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s",
        (token_id,))


async def revoke_session_tokens(conn: Conn, session_id: uuid.UUID | str) -> None:
    """`RevokeTokenFamily` for tokens that belong to a session."""
    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() "
        "where session_id = %s and revoked = false", (str(session_id),))
