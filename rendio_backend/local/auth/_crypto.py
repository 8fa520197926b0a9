"""Passwords and refresh tokens, made the way GoTrue makes them."""

from __future__ import annotations

import asyncio
import secrets
import string

import bcrypt

from ._errors import WeakPasswordError, bad_request

# golang.org/x/crypto/bcrypt's DefaultCost, which GoTrue uses.
BCRYPT_COST = 10
# bcrypt only reads 72 bytes; GoTrue refuses longer passwords instead of truncating.
MAX_PASSWORD_LENGTH = 72
# GoTrue's default GOTRUE_PASSWORD_MIN_LENGTH (the Supabase CLI's too).
MIN_PASSWORD_LENGTH = 6
_REFRESH_ALPHABET = string.ascii_lowercase + string.digits


def check_password_strength(password: str) -> None:
    """Raise GoTrue's errors for a password that is too long or too short.

    Lengths are in bytes, as Go's `len` counts them: 40 two-byte characters are too long
    for bcrypt, and GoTrue says so in its own words before bcrypt would."""
    size = len(password.encode())
    if size > MAX_PASSWORD_LENGTH:
        raise bad_request("validation_failed",
                          f"Password cannot be longer than {MAX_PASSWORD_LENGTH} characters")
    if size < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"Password should be at least {MIN_PASSWORD_LENGTH} characters.", ["length"])


async def hash_password(password: str) -> str:
    """A bcrypt hash (`$2a$10$...`, as Go writes it); hashed off the event loop."""
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_LENGTH:
        raise bad_request("validation_failed", "bcrypt: password length exceeds 72 bytes")
    digest = await asyncio.to_thread(bcrypt.hashpw, encoded, bcrypt.gensalt(BCRYPT_COST))
    # Go's bcrypt writes the `2a` prefix; both libraries read either.
    return "$2a$" + digest.decode()[4:]


async def verify_password(password: str, hashed: str | None) -> bool:
    """Whether `password` matches the stored bcrypt hash (False for no or bad hashes)."""
    if not hashed:
        return False
    try:
        return await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed.encode())
    except ValueError:
        return False


def is_bcrypt_hash(value: str) -> bool:
    """Whether an admin-supplied `password_hash` is a bcrypt hash GoTrue would accept."""
    parts = value.split("$")
    return (len(parts) == 4 and parts[0] == "" and parts[1] in {"2a", "2b", "2y"}
            and parts[2].isdigit() and len(parts[3]) == 53)


def new_refresh_token() -> str:
    """A legacy (v1) GoTrue refresh token: 12 characters of `[a-z0-9]`."""
    return "".join(secrets.choice(_REFRESH_ALPHABET) for _ in range(12))


def random_password() -> str:
    """The password GoTrue gives admin-created users who were given none."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(64))
