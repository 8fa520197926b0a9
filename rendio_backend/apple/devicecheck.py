"""An async client of Apple's DeviceCheck server API (two bits per device).

    POST {base}/v1/validate_device_token   {device_token, transaction_id, timestamp}
    POST {base}/v1/query_two_bits          same; answers {bit0, bit1, last_update_time}
    POST {base}/v1/update_two_bits         same plus bit0 and/or bit1

Authenticated as Apple documents it (the APNs provider-token recipe): `Authorization:
Bearer <JWT>`, ES256, header `kid` = APPLE_DEVICECHECK_KEY_ID, claims `iss` =
APPLE_TEAM_ID and `iat`, signed with APPLE_DEVICECHECK_PRIVATE_KEY (the .p8 key).

The base URL is APPLE_DEVICECHECK_URL, else Apple's host for ENVIRONMENT: the
development server for `development`, production for everything else (TestFlight and
App Store builds, which a staging backend serves, get production tokens).

Apple's answers, mapped: 200 is success, and for a device whose bits were never
written query_two_bits answers 200 with the plain text "Failed to find bit state"
(older docs: "Bit State Not Found"), read as both bits false; 400 about the device
token → InvalidDeviceToken; 401/403, another 4xx or a 400 about the authorization
token → AppleApiError (our key or request is wrong); 5xx, 429, timeouts and network
errors → AppleUnavailable.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..config import RendioConfig
from ..errors import ConfigurationError
from .errors import AppleApiError, AppleUnavailable, InvalidDeviceToken

__all__ = ["DEVELOPMENT_URL", "PRODUCTION_URL", "DeviceBits", "DeviceCheckClient",
           "devicecheck_url"]

PRODUCTION_URL = "https://api.devicecheck.apple.com"
DEVELOPMENT_URL = "https://api.development.devicecheck.apple.com"
# APNs-style tokens: Apple refuses one older than an hour and asks that a token be
# renewed no more often than every 20 minutes.
TOKEN_REUSE_SECONDS = 20 * 60
# Bounded: the app waits on this during onboarding; Apple answers in well under a second.
READ_TIMEOUT_SECONDS = 10.0
_NO_BITS = ("failed to find bit state", "bit state not found")


def devicecheck_url(config: RendioConfig) -> str:
    """The DeviceCheck base URL for `config` (see the module's docstring)."""
    if config.apple_devicecheck_url:
        return config.apple_devicecheck_url.rstrip("/")
    return DEVELOPMENT_URL if config.environment.lower() == "development" else PRODUCTION_URL


@dataclass(frozen=True)
class DeviceBits:
    """A device's two bits; `last_update_time` is Apple's "YYYY-MM" (None: never set)."""

    bit0: bool = False
    bit1: bool = False
    last_update_time: str | None = None


def load_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """The .p8 key: PEM text (a `.env` may carry its line breaks as `\\n`) or a path."""
    text = value.replace("\\n", "\n").strip()
    if not text.startswith("-----BEGIN") and Path(text).is_file():
        text = Path(text).read_text()
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except ValueError:
        raise ConfigurationError("APPLE_DEVICECHECK_PRIVATE_KEY is not a PEM private key",
                                 code="invalid_apple_key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigurationError("APPLE_DEVICECHECK_PRIVATE_KEY must be an EC (P-256) key",
                                 code="invalid_apple_key")
    return key


class DeviceCheckClient:
    """Calls DeviceCheck for one team and key. Cheap to build: missing settings raise
    ConfigurationError on first use, so an API without DeviceCheck still starts."""

    def __init__(
        self,
        *,
        base_url: str,
        team_id: str | None,
        key_id: str | None,
        private_key: str | None,
        connect_timeout: float = 5.0,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._team_id = team_id
        self._key_id = key_id
        self._private_key = private_key
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._token: tuple[str, float] | None = None
        self._owns_http = http_client is None
        # No redirects: they would carry the bearer token elsewhere.
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False)

    @classmethod
    def from_config(cls, config: RendioConfig, *,
                    http_client: httpx.AsyncClient | None = None) -> DeviceCheckClient:
        return cls(base_url=devicecheck_url(config), team_id=config.apple_team_id,
                   key_id=config.apple_devicecheck_key_id,
                   private_key=config.apple_devicecheck_private_key,
                   connect_timeout=config.connect_timeout,
                   read_timeout=min(config.timeout, READ_TIMEOUT_SECONDS),
                   http_client=http_client)

    # --- the three calls ------------------------------------------------------------
    async def validate_device_token(self, device_token: str) -> None:
        """Return if Apple accepts the token as a genuine device's; InvalidDeviceToken if not."""
        await self._post("validate_device_token", device_token, {})

    async def query_two_bits(self, device_token: str) -> DeviceBits:
        """The device's bits (both false for a device never written)."""
        response = await self._post("query_two_bits", device_token, {})
        return parse_bits(response.text)

    async def update_two_bits(self, device_token: str, *, bit0: bool | None = None,
                              bit1: bool | None = None) -> None:
        """Set the given bits (a bit left None keeps its value)."""
        if bit0 is None and bit1 is None:
            raise ValueError("update_two_bits needs bit0 or bit1")
        bits = {name: value for name, value in (("bit0", bit0), ("bit1", bit1))
                if value is not None}
        await self._post("update_two_bits", device_token, bits)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- plumbing -------------------------------------------------------------------
    def authorization_token(self) -> str:
        """The provider JWT, reused for TOKEN_REUSE_SECONDS."""
        now = time.time()
        if self._token is not None and now - self._token[1] < TOKEN_REUSE_SECONDS:
            return self._token[0]
        if not (self._team_id and self._key_id and self._private_key):
            raise ConfigurationError(
                "DeviceCheck needs APPLE_TEAM_ID, APPLE_DEVICECHECK_KEY_ID and "
                "APPLE_DEVICECHECK_PRIVATE_KEY", code="missing_devicecheck_key")
        if self._key is None:
            self._key = load_private_key(self._private_key)
        issued = int(now)
        token = jwt.encode({"iss": self._team_id, "iat": issued}, self._key,
                           algorithm="ES256", headers={"kid": self._key_id, "typ": None})
        self._token = (token, float(issued))
        return token

    async def _post(self, endpoint: str, device_token: str,
                    extra: dict[str, Any]) -> httpx.Response:
        body = {"device_token": device_token, "transaction_id": str(uuid.uuid4()),
                "timestamp": int(time.time() * 1000), **extra}
        headers = {"Authorization": f"Bearer {self.authorization_token()}"}
        try:
            response = await self._http.post(f"{self.base_url}/v1/{endpoint}", json=body,
                                             headers=headers)
        except httpx.TransportError as exc:  # connect, read and pool timeouts included
            raise AppleUnavailable(f"DeviceCheck is unreachable: {type(exc).__name__}",
                                   details={"endpoint": endpoint}) from exc
        raise_for_status(response, endpoint)
        return response


def raise_for_status(response: httpx.Response, endpoint: str) -> None:
    """The typed error for a DeviceCheck answer that is not a 200."""
    status = response.status_code
    if status == 200:
        return
    message = response.text.strip()[:200]
    details = {"endpoint": endpoint, "apple_status": status, "apple_message": message}
    if status >= 500 or status == 429:
        raise AppleUnavailable(f"DeviceCheck answered {status}", details=details)
    if status == 400 and "authorization" not in message.lower():
        raise InvalidDeviceToken(message or "DeviceCheck refused the device token",
                                 details={**details, "field": "device_token"})
    raise AppleApiError(f"DeviceCheck refused our request ({status}: {message})",
                        details=details)


def parse_bits(text: str) -> DeviceBits:
    """query_two_bits' 200 body: the bits as JSON, or Apple's "no bits yet" text."""
    stripped = text.strip()
    if stripped.lower().rstrip(".") in _NO_BITS:
        return DeviceBits()
    try:
        data = json.loads(stripped)
    except ValueError:
        raise AppleApiError("DeviceCheck answered an unexpected body",
                            details={"apple_message": stripped[:200]}) from None
    if not isinstance(data, dict) or not all(
            isinstance(data.get(bit, False), bool) for bit in ("bit0", "bit1")):
        raise AppleApiError("DeviceCheck answered an unexpected body",
                            details={"apple_message": stripped[:200]})
    updated = data.get("last_update_time")
    return DeviceBits(bit0=data.get("bit0", False), bit1=data.get("bit1", False),
                      last_update_time=updated if isinstance(updated, str) else None)
