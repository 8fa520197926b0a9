"""Creating accounts and attaching identities to them, as GoTrue does: `signupNewUser`,
`createAccountFromExternalIdentity` (with automatic linking by verified email),
`linkIdentityToUser`, and the email identity that follows a user's confirmed email."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from . import _store as store
from ._context import DEFAULT_ROLE, DUPLICATE_EMAIL, SIGNUP_DISABLED, Conn
from ._errors import bad_request, forbidden, internal, unprocessable


async def create_user(conn: Conn, *, user_id: uuid.UUID, aud: str, email: str | None,
                      encrypted_password: str, app_metadata: dict[str, Any],
                      user_metadata: dict[str, Any], is_anonymous: bool = False,
                      role: str = DEFAULT_ROLE) -> None:
    """`signupNewUser`: insert, then set the role in a second statement."""
    try:
        await store.insert_user(
            conn, user_id=user_id, aud=aud, email=email,
            encrypted_password=encrypted_password, app_metadata=app_metadata,
            user_metadata=user_metadata, is_anonymous=is_anonymous)
    except psycopg.Error as exc:
        raise internal("Database error saving new user") from exc
    try:
        await store.update_user(conn, user_id, {"role": role})
    except psycopg.Error as exc:
        raise internal("Database error updating user") from exc


async def account_from_identity(conn: Conn, aud: str, provider: str,
                                metadata: dict[str, Any], *, allow_signup: bool) -> uuid.UUID:
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
        user = await _linking_candidate(conn, email, aud) if email else None
        if user is not None:
            await store.insert_identity(conn, user_id=user["id"], provider=provider,
                                        identity_data=metadata)
            await store.merge_metadata(conn, user, "raw_user_meta_data", metadata)
            await store.update_app_metadata_providers(conn, user)
        else:
            if not allow_signup:
                raise unprocessable("signup_disabled", SIGNUP_DISABLED)
            user_id = uuid.uuid4()
            await create_user(
                conn, user_id=user_id, aud=aud, email=email or None, encrypted_password="",
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


async def _linking_candidate(conn: Conn, email: str, aud: str) -> store.Row | None:
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


async def link_identity(conn: Conn, target: store.Row, provider: str,
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
        await _promote_identity_email(conn, user)
        await store.confirm_email(conn, user)
        if user["is_anonymous"]:
            await store.update_user(conn, user["id"], {"is_anonymous": False})
    await store.update_app_metadata_providers(conn, user)
    return uuid.UUID(str(user["id"]))


async def _promote_identity_email(conn: Conn, user: store.Row) -> None:
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
    raise bad_request("email_exists", DUPLICATE_EMAIL)


async def apply_email_change(conn: Conn, user: store.Row, email: str) -> None:
    """The end of an email change (`emailChangeVerify`, `ConfirmEmailChange`): the new
    address, confirmed, with its identity; an anonymous user becomes permanent."""
    await store.update_user(conn, user["id"], {
        "email": email, "email_change": "", "email_change_token_current": "",
        "email_change_token_new": "", "email_change_confirm_status": 0})
    if not user["email_confirmed_at"] and not user["phone_confirmed_at"]:
        await store.confirm_email(conn, user)
    await set_email_identity(conn, user, email, verified=True)
    if user["is_anonymous"]:
        await store.update_user(conn, user["id"], {"is_anonymous": False})
    await store.update_app_metadata_providers(conn, user)


async def set_email_identity(conn: Conn, user: store.Row, email: str, *,
                             verified: bool) -> None:
    """Point the user's `email` identity at `email`, creating it when there is none."""
    identity = await store.find_identity(conn, str(user["id"]), "email")
    if identity is None:
        await store.insert_identity(conn, user_id=user["id"], provider="email", identity_data={
            "sub": str(user["id"]), "email": email, "email_verified": verified,
            "phone_verified": False})
    else:
        await store.update_identity_data(conn, identity, {"email": email,
                                                          "email_verified": verified})
