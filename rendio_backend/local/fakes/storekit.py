"""StoreKit test signing: a local certificate chain shaped like the App Store's, and a
signer of StoreKit 2 transactions and App Store Server Notifications V2 with it.

The chain is root → intermediate → leaf, all EC P-256, with what Apple's
`SignedDataVerifier` checks (OpenSSL's X509_STRICT path validation, then Apple's OIDs):
CA roots and intermediates with critical basicConstraints and keyUsage (keyCertSign)
and a subject key identifier; authority key identifiers below the root; the Apple
marker extensions 1.2.840.113635.100.6.2.1 on the intermediate and
1.2.840.113635.100.6.11.1 on the leaf (value DER NULL, as in Apple's certificates).

The stack's chain is made once under `<state>/apple/storekit/` (`chain.pem` holds the
certificates and the leaf key; `root.der` is the root the stack's RendioConfig trusts
in place of Apple Root CA - G3), so the API verifies every signed payload with the real
verifier and real cryptography. `SigningChain.generate()` makes a throwaway chain:
data it signs is what a forger could make, and is refused.

JWS as the App Store makes them: header `{"alg": "ES256", "x5c": [leaf, intermediate,
root]}` (base64 DER, no `typ`), payload the decoded fields Apple documents.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ._files import create_once

if TYPE_CHECKING:
    from ..config import StackConfig

INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
_DER_NULL = b"\x05\x00"
# Fixed, wide validity: the verifier checks the chain at the payload's signedDate, so
# tests may sign with any date this century.
_NOT_BEFORE = datetime(2000, 1, 1, tzinfo=UTC)
_NOT_AFTER = datetime(2049, 12, 31, tzinfo=UTC)


def storekit_dir(config: StackConfig) -> Path:
    return config.apple_dir / "storekit"


def root_certificate_path(config: StackConfig) -> Path:
    """The stack's StoreKit root (DER), made on first use."""
    load_stack_chain(config)
    return storekit_dir(config) / "root.der"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rendio local stack")])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, *, ca: bool,
                 issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
                 marker: x509.ObjectIdentifier | None) -> x509.Certificate:
    public = key.public_key()
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(issuer_cert.subject if issuer_cert else _name(subject))
               .public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(_NOT_BEFORE)
               .not_valid_after(_NOT_AFTER)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca and issuer
                                                    else None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False,
                   key_encipherment=False, data_encipherment=False, key_agreement=False,
                   key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
                   critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public),
                              critical=False))
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    if marker is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(marker, _DER_NULL),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class SigningChain:
    """A root, an intermediate and a leaf whose key signs the payloads."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, name: str = "Rendio Local StoreKit") -> SigningChain:
        root_key = ec.generate_private_key(ec.SECP256R1())
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate(f"{name} Root CA", root_key, ca=True, issuer=None, marker=None)
        intermediate = _certificate(f"{name} Intermediate CA", intermediate_key, ca=True,
                                    issuer=(root, root_key), marker=INTERMEDIATE_OID)
        leaf = _certificate(f"{name} Signing", leaf_key, ca=False,
                            issuer=(intermediate, intermediate_key), marker=LEAF_OID)
        return cls(root, intermediate, leaf, leaf_key)

    def to_pem(self) -> bytes:
        certs = b"".join(cert.public_bytes(serialization.Encoding.PEM)
                         for cert in (self.root, self.intermediate, self.leaf))
        return certs + self.leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    @classmethod
    def from_pem(cls, data: bytes) -> SigningChain:
        root, intermediate, leaf = x509.load_pem_x509_certificates(data)
        key = serialization.load_pem_private_key(data[data.index(b"-----BEGIN PRIVATE KEY"):],
                                                 password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the StoreKit chain's key is not an EC key")
        return cls(root, intermediate, leaf, key)

    @property
    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    @property
    def x5c(self) -> list[str]:
        """The JWS `x5c` header: leaf, intermediate, root as base64 DER."""
        return [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
                for cert in (self.leaf, self.intermediate, self.root)]


def load_stack_chain(config: StackConfig) -> SigningChain:
    """The stack's chain, made once under `<state>/apple/storekit/`."""
    directory = storekit_dir(config)
    chain = SigningChain.from_pem(create_once(directory / "chain.pem",
                                              lambda: SigningChain.generate().to_pem()))
    # Derived from chain.pem, so racing writers write the same bytes.
    create_once(directory / "root.der", lambda: chain.root_der)
    return chain


def _now_ms() -> int:
    return int(time.time() * 1000)


def new_transaction_id() -> str:
    """A fresh id shaped like Apple's (decimal digits)."""
    return str(2000000000000000 + secrets.randbelow(10**15))


class StoreKitSigner:
    """Signs StoreKit data for one app with a chain (the stack's, or a throwaway one)."""

    def __init__(self, chain: SigningChain, *, bundle_id: str, environment: str = "Sandbox",
                 app_apple_id: int | None = None) -> None:
        self.chain = chain
        self.bundle_id = bundle_id
        self.environment = environment
        self.app_apple_id = app_apple_id

    @classmethod
    def for_stack(cls, config: StackConfig) -> StoreKitSigner:
        """Signs as the App Store does for the stack's app (its RendioConfig trusts it)."""
        return cls(load_stack_chain(config), bundle_id=config.apple_client_ids[0])

    def sign(self, payload: dict[str, Any]) -> str:
        """A JWS of `payload` with the chain in `x5c`, as the App Store signs."""
        return jwt.encode(payload, self.chain.leaf_key, algorithm="ES256",
                          headers={"x5c": self.chain.x5c, "typ": None})

    def transaction_payload(self, product_id: str, *, transaction_id: str | None = None,
                            quantity: int = 1, app_account_token: uuid.UUID | str | None = None,
                            revocation_date: int | None = None,
                            **fields: Any) -> dict[str, Any]:
        """The decoded fields of a consumable's StoreKit 2 transaction; `fields` override."""
        now = _now_ms()
        transaction_id = transaction_id or new_transaction_id()
        payload: dict[str, Any] = {
            "transactionId": transaction_id,
            "originalTransactionId": transaction_id,
            "bundleId": self.bundle_id,
            "productId": product_id,
            "purchaseDate": now,
            "originalPurchaseDate": now,
            "quantity": quantity,
            "type": "Consumable",
            "inAppOwnershipType": "PURCHASED",
            "signedDate": now,
            "environment": self.environment,
            "transactionReason": "PURCHASE",
            "storefront": "USA",
            "storefrontId": "143441",
            "price": 4990,
            "currency": "USD",
            "appTransactionId": "704289572311569389",
        }
        if app_account_token is not None:
            payload["appAccountToken"] = str(app_account_token)
        if revocation_date is not None:
            payload["revocationDate"] = revocation_date
            payload["revocationReason"] = 0
        payload.update(fields)
        return payload

    def sign_transaction(self, product_id: str, **options: Any) -> str:
        """A signed transaction (`Transaction.jwsRepresentation`); see transaction_payload."""
        return self.sign(self.transaction_payload(product_id, **options))

    def sign_notification(self, notification_type: str, *,
                          signed_transaction: str | None = None, subtype: str | None = None,
                          notification_uuid: uuid.UUID | str | None = None,
                          **data: Any) -> str:
        """A notification's `signedPayload`; `data` overrides fields of its `data`."""
        body: dict[str, Any] = {
            "bundleId": self.bundle_id,
            "bundleVersion": "1",
            "environment": self.environment,
        }
        if self.app_apple_id is not None:
            body["appAppleId"] = self.app_apple_id
        if signed_transaction is not None:
            body["signedTransactionInfo"] = signed_transaction
        body.update(data)
        payload: dict[str, Any] = {
            "notificationType": notification_type,
            "notificationUUID": str(notification_uuid or uuid.uuid4()),
            "data": body,
            "version": "2.0",
            "signedDate": _now_ms(),
        }
        if subtype is not None:
            payload["subtype"] = subtype
        return self.sign(payload)

