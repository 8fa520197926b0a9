"""A stand-in for Apple's DeviceCheck server API, served by the gateway at
`/_fake/apple/devicecheck/v1/{validate_device_token,query_two_bits,update_two_bits}`.

It checks requests as Apple does and answers with Apple's status codes and bodies:

- `Authorization: Bearer <JWT>`: ES256, header `kid` = FAKE_KEY_ID, claims `iss` =
  FAKE_TEAM_ID and an `iat` no older than an hour, signed with the stack's DeviceCheck
  key (`<state>/apple/devicecheck_key.pem`, made once; the stack's RendioConfig signs
  with it). Missing → 400 "Missing or incorrectly formatted authorization token"; any
  other failure → 401 "Unable to verify authorization token".
- Body: a JSON object with `device_token`, `transaction_id` (a non-empty string) and
  `timestamp` (milliseconds, an integer); update adds `bit0` and/or `bit1` (booleans).
  Anything else → 400 with Apple's "Missing or incorrectly formatted …" message.
- Device tokens: real ones are opaque, single-use base64 blobs, new on every call, that
  Apple maps to a device. Here a token is valid when it is standard base64 (no line
  breaks, correct padding) of at least one byte; the **device** is the decoded bytes up
  to the first `:` (all of them when there is none), so `fake_device_token("phone-1")`
  mints fresh tokens for one device. Anything else is a bad token: 400 "Missing or
  incorrectly formatted device token payload".
- Bits: two per device, kept in `<state>/apple/devicecheck.sqlite3`, so a restart (and
  every gateway worker) sees the same bits. A device never written answers
  query_two_bits with 200 and the text "Failed to find bit state", as Apple does.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ._files import create_once, sqlite_transaction

if TYPE_CHECKING:
    from ..config import StackConfig

FAKE_TEAM_ID = "RENDIOTEAM"
FAKE_KEY_ID = "RENDIODCK1"
NO_BITS = "Failed to find bit state"
BAD_DEVICE_TOKEN = "Missing or incorrectly formatted device token payload"
BAD_AUTH = "Missing or incorrectly formatted authorization token"
UNVERIFIED_AUTH = "Unable to verify authorization token"
TOKEN_LIFETIME_SECONDS = 3600
_CLOCK_SKEW_SECONDS = 60


def key_path(config: StackConfig) -> Path:
    return config.apple_dir / "devicecheck_key.pem"


def private_key_pem(config: StackConfig) -> str:
    """The stack's DeviceCheck signing key (PKCS#8 PEM, like Apple's .p8), made once."""

    def make() -> bytes:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    return create_once(key_path(config), make).decode()


def fake_device_token(device: str | None = None) -> str:
    """A fresh token for `device` (default: a new device), as the fake reads them."""
    device = device if device is not None else f"device-{secrets.token_hex(8)}"
    return base64.b64encode(f"{device}:{secrets.token_hex(16)}".encode()).decode()


def device_of(token: object) -> bytes | None:
    """The device a token names, or None for a malformed token (see the docstring)."""
    if not isinstance(token, str) or not token or "\n" in token or "\r" in token:
        return None
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.split(b":", 1)[0] if raw else None


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeDeviceCheck:
    """The fake's state: the key it trusts and the bits it keeps."""

    def __init__(self, config: StackConfig) -> None:
        key = serialization.load_pem_private_key(private_key_pem(config).encode(),
                                                 password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.public_key = key.public_key()
        self.db_path = config.apple_dir / "devicecheck.sqlite3"
        with self._connect() as db:
            db.execute("create table if not exists bits (device blob primary key, "
                       "bit0 integer not null, bit1 integer not null, updated text not null)")

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self.db_path)

    # --- checks ---------------------------------------------------------------------
    def check_authorization(self, header: str | None) -> None:
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            raise _Refused(400, BAD_AUTH)
        token = header[7:].strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"],
                                options={"require": ["iss", "iat"], "verify_iat": False})
        except jwt.PyJWTError:
            raise _Refused(401, UNVERIFIED_AUTH) from None
        now = time.time()
        iat = claims.get("iat")
        if (kid != FAKE_KEY_ID or claims.get("iss") != FAKE_TEAM_ID
                or not isinstance(iat, int | float)
                or not now - TOKEN_LIFETIME_SECONDS <= iat <= now + _CLOCK_SKEW_SECONDS):
            raise _Refused(401, UNVERIFIED_AUTH)

    @staticmethod
    def parse_body(raw: bytes, *, update: bool) -> tuple[bytes, dict[str, bool]]:
        """The device and the bits to set, or _Refused(400) as Apple words it."""
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Refused(400, "Missing or incorrectly formatted payload") from None
        if not isinstance(body, dict):
            raise _Refused(400, "Missing or incorrectly formatted payload")
        device = device_of(body.get("device_token"))
        if device is None:
            raise _Refused(400, BAD_DEVICE_TOKEN)
        if not isinstance(body.get("transaction_id"), str) or not body["transaction_id"]:
            raise _Refused(400, "Missing or incorrectly formatted transaction ID")
        timestamp = body.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp <= 0:
            raise _Refused(400, "Missing or incorrectly formatted time stamp")
        bits = {name: body[name] for name in ("bit0", "bit1") if name in body}
        if update and (not bits or not all(isinstance(v, bool) for v in bits.values())):
            raise _Refused(400, "Missing or incorrectly formatted bits")
        return device, bits

    # --- the bits -------------------------------------------------------------------
    def query(self, device: bytes) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("select bit0, bit1, updated from bits where device = ?",
                             (device,)).fetchone()
        if row is None:
            return None
        return {"bit0": bool(row[0]), "bit1": bool(row[1]), "last_update_time": row[2]}

    def update(self, device: bytes, bits: dict[str, bool]) -> None:
        # One statement, so concurrent updates of the two bits cannot undo each other.
        with self._connect() as db:
            db.execute(
                "insert into bits (device, bit0, bit1, updated) "
                "values (:device, coalesce(:bit0, 0), coalesce(:bit1, 0), :updated) "
                "on conflict (device) do update set bit0 = coalesce(:bit0, bit0), "
                "bit1 = coalesce(:bit1, bit1), updated = :updated",
                {"device": device, "bit0": bits.get("bit0"), "bit1": bits.get("bit1"),
                 "updated": datetime.now(UTC).strftime("%Y-%m")})

    # --- HTTP -----------------------------------------------------------------------
    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            name = request.url.path.rsplit("/", 1)[-1]
            try:
                self.check_authorization(request.headers.get("authorization"))
                device, bits = self.parse_body(await request.body(),
                                               update=name == "update_two_bits")
            except _Refused as refused:
                return PlainTextResponse(refused.message, status_code=refused.status)
            if name == "query_two_bits":
                found = await run_in_threadpool(self.query, device)
                if found is None:
                    return PlainTextResponse(NO_BITS)
                return JSONResponse(found)
            if name == "update_two_bits":
                await run_in_threadpool(self.update, device, bits)
            return Response(status_code=200)

        paths = ("validate_device_token", "query_two_bits", "update_two_bits")
        return Starlette(routes=[Route(f"/v1/{path}", endpoint, methods=["POST"])
                                 for path in paths])


def create_fake_devicecheck_app(config: StackConfig) -> Starlette:
    """The ASGI app of the fake (mounted under the fake Apple app at /devicecheck)."""
    return FakeDeviceCheck(config).app()
