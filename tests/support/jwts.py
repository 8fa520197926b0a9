"""Tokens no honest issuer makes, built by hand because PyJWT refuses to make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _part(value: dict[str, Any]) -> bytes:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def hmac_jwt(claims: dict[str, Any], key: bytes, **header: Any) -> str:
    """An HS256 token MAC'd with any bytes, e.g. a public key's (RS/HS confusion)."""
    signing_input = _part({"alg": "HS256", "typ": "JWT", **header}) + b"." + _part(claims)
    mac = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def unsigned_jwt(claims: dict[str, Any], **header: Any) -> str:
    """`alg: none`, no signature."""
    return (_part({"alg": "none", "typ": "JWT", **header}) + b"." + _part(claims)).decode() + "."


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def rewrite_header(token: str, **changes: Any) -> str:
    """`token` with header fields changed and its signature kept (now for another input)."""
    header_part, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    return ".".join((_part({**header, **changes}).decode(), payload, signature))
