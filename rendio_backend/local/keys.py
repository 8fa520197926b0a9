"""The local stack's keys, as the Supabase CLI sets them up (`pkg/config/apikeys.go`,
`config.go` `ResolveJWKS`).

- API keys: `sb_publishable_…` and `sb_secret_…` (the CLI's well-known local values). They
  are not JWTs: the gateway swaps them for the legacy anon / service_role JWTs, which,
  like the JWT secret, keep working.
- User access tokens: ES256 with a `kid` (the CLI's default since v2.71), or HS256 with
  the JWT secret and no `kid` in legacy mode (`RENDIO_JWT_ALG=HS256`, a project that has
  not migrated to signing keys).
- Verifiers (Auth itself, PostgREST, Storage) get the public key plus the secret as an
  `oct` JWK, so HS256 tokens stay valid; Auth's JWKS publishes the public key only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import StackError

# supabase/cli pkg/config/apikeys.go: the defaults of every `supabase start`.
DEFAULT_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
DEFAULT_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
ES256 = "ES256"
HS256 = "HS256"
JWT_ALGORITHMS = (ES256, HS256)
# The order of the P-256 group: a private scalar lies in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """An EC P-256 key that signs ES256 access tokens, named by `kid`."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public half as GoTrue publishes it (`use` sig, `key_ops` verify only)."""
        numbers = self.public_key.public_numbers()
        return {"alg": ES256, "crv": "P-256", "key_ops": ["verify"], "kid": self.kid,
                "kty": "EC", "use": "sig", "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big"))}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm=ES256, headers={"kid": self.kid})


@functools.lru_cache(maxsize=8)
def derive_signing_key(secret: str) -> SigningKey:
    """The stack's signing key, derived from its JWT secret.

    Derived rather than stored, so every process of a stack (gateway workers, PostgREST's
    config, tests, the CLI) and every restart has the same key with no file to share.
    Like the Supabase CLI's one hard-coded local key it is no more secret than the JWT
    secret, which signs valid tokens anyway; hosted projects have keys of their own.
    """
    seed = HKDF(algorithm=hashes.SHA256(), length=48, salt=None,
                info=b"rendio local ES256 signing key").derive(secret.encode())
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    private_key = ec.derive_private_key(scalar, ec.SECP256R1())
    point = private_key.public_key().public_numbers()
    digest = hashlib.sha256(point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")).digest()
    # GoTrue's kids are UUIDs (`supabase gen signing-key` makes a v4 one).
    return SigningKey(str(uuid.UUID(bytes=digest[:16], version=4)), private_key)


@dataclass(frozen=True)
class JwtKeys:
    """What the stack signs user tokens with and what its services verify them with."""

    secret: str
    # None in legacy mode: HS256 only, as before a project adopts signing keys.
    signing: SigningKey | None

    @classmethod
    def for_algorithm(cls, secret: str, algorithm: str) -> JwtKeys:
        if algorithm not in JWT_ALGORITHMS:
            raise StackError(f"RENDIO_JWT_ALG must be one of {', '.join(JWT_ALGORITHMS)}, "
                             f"not {algorithm!r}")
        return cls(secret, derive_signing_key(secret) if algorithm == ES256 else None)

    @property
    def algorithm(self) -> str:
        return ES256 if self.signing is not None else HS256

    def sign(self, claims: dict[str, Any]) -> str:
        """An access token: ES256 with the key's `kid`, or HS256 without one (legacy)."""
        if self.signing is not None:
            return self.signing.sign(claims)
        return jwt.encode(claims, self.secret, algorithm=HS256)

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The asymmetric key named `kid`, if the stack has one."""
        if self.signing is not None and self.signing.kid == kid:
            return self.signing.public_key
        return None

    def public_jwks(self) -> dict[str, Any]:
        """Auth's `/.well-known/jwks.json`: public keys only, empty in legacy mode."""
        return {"keys": [self.signing.public_jwk()] if self.signing is not None else []}

    def verifier_jwks(self) -> dict[str, Any]:
        """What PostgREST and Storage verify with: the public keys and the secret."""
        return {"keys": [*self.public_jwks()["keys"],
                         {"kty": "oct", "k": b64url(self.secret.encode())}]}
