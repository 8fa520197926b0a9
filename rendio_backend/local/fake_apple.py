"""A stand-in for Sign in with Apple: an RS256 id_token issuer and its JWKS. The same
app serves the fake DeviceCheck API (`fakes/devicecheck.py`) at `/devicecheck`.

The local Auth service verifies Apple id_tokens exactly as against Apple (issuer,
signature from the JWKS fetched over HTTP, expiry, audience, nonce); only the issuer
differs: `config.apple_issuer`, served by the gateway at `/_fake/apple`, whose
`GET /auth/keys` mirrors `https://appleid.apple.com/auth/keys`.

The signing key is made once and kept under `config.apple_dir` (mode 0600), so every
gateway worker, test and CLI command signs and verifies with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from .config import StackConfig

_KEY_FILE = "signing_key.pem"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _load_or_create_key(directory: Path) -> rsa.RSAPrivateKey:
    path = directory / _KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        temporary = directory / f".{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            # link() fails if another process won the race: then everyone uses its key.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return loaded


class FakeAppleIssuer:
    """Mints Apple-shaped id_tokens signed with the stack's fake Apple key."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.private_key = _load_or_create_key(config.apple_dir)
        numbers = self.private_key.public_key().public_numbers()
        self._public_jwk = {"kty": "RSA", "e": _b64(numbers.e), "n": _b64(numbers.n)}
        # RFC 7638 thumbprint: stable for the key, different for any other key.
        canonical = json.dumps(self._public_jwk, separators=(",", ":"), sort_keys=True)
        self.kid = base64.urlsafe_b64encode(
            hashlib.sha256(canonical.encode()).digest()[:8]).rstrip(b"=").decode()

    def jwks(self) -> dict[str, Any]:
        """The JWKS document, shaped like Apple's."""
        return {"keys": [{**self._public_jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint_id_token(
        self,
        *,
        sub: str,
        audience: str | None = None,
        nonce: str | None = None,
        email: str | None = None,
        expires_in: int = 600,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """An RS256 id_token as Apple issues it after Sign in with Apple.

        `nonce` is the raw nonce the app generated; the token carries its SHA-256 hex,
        as Apple does. `key` signs with another key (a forged token) under this
        issuer's `kid`; a negative `expires_in` makes an expired token.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.config.apple_issuer,
            "aud": audience or self.config.apple_client_ids[0],
            "exp": now + expires_in,
            "iat": now,
            "sub": sub,
            "auth_time": now,
            "nonce_supported": True,
        }
        if nonce is not None:
            claims["nonce"] = hashlib.sha256(nonce.encode()).hexdigest()
        if email is not None:
            claims["email"] = email
            claims["email_verified"] = True
            claims["is_private_email"] = email.endswith("@privaterelay.appleid.com")
        return jwt.encode(claims, key or self.private_key, algorithm="RS256",
                          headers={"kid": self.kid})


def create_fake_apple_app(config: StackConfig) -> Starlette:
    """The ASGI app serving the fake issuer's JWKS at `GET /auth/keys` and the fake
    DeviceCheck API under `/devicecheck/v1/...` (see `fakes.devicecheck`)."""
    from .fakes.devicecheck import create_fake_devicecheck_app

    issuer = FakeAppleIssuer(config)

    async def keys(request: Request) -> JSONResponse:
        return JSONResponse(issuer.jwks())

    return Starlette(routes=[Route("/auth/keys", keys, methods=["GET"]),
                             Mount("/devicecheck", app=create_fake_devicecheck_app(config))])
