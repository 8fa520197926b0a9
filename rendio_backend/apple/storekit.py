"""Verification of StoreKit 2 signed transactions and App Store Server Notifications V2
with Apple's app-store-server-library (`SignedDataVerifier`).

The verifier checks the JWS (ES256 only), its `x5c` chain up to the configured roots
(Apple Root CA - G3 in production: APPLE_ROOT_CERTIFICATES; the local stack's own root
locally), the Apple OIDs on the leaf and intermediate certificates, then the bundle id
(APPLE_BUNDLE_ID), the environment, and for Production data the app's id
(APPLE_APP_APPLE_ID). Its environment follows ENVIRONMENT: `production` verifies
Production data, anything else Sandbox (development and TestFlight purchases). Xcode
and LocalTesting, which skip the signature, are never used. OCSP revocation checks run
only when APPLE_STOREKIT_ONLINE_CHECKS is set. The async calls run in a thread.

Failures: InvalidSignedData (reason `invalid_signature`, `wrong_app` or
`wrong_environment`), AppleUnavailable when an online check could not reach Apple,
ConfigurationError when the verifier is not configured.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.models.JWSTransactionDecodedPayload import (
    JWSTransactionDecodedPayload,
)
from appstoreserverlibrary.signed_data_verifier import (
    SignedDataVerifier,
    VerificationException,
    VerificationStatus,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..config import RendioConfig
from ..errors import ConfigurationError
from .errors import AppleUnavailable, InvalidSignedData

__all__ = ["REFUND_TYPES", "StoreKitVerifier", "VerifiedNotification", "VerifiedTransaction",
           "load_root_certificates", "storekit_environment"]

# Notification types that take a purchase back.
REFUND_TYPES = frozenset({"REFUND", "REVOKE"})
_REASONS = {
    VerificationStatus.INVALID_APP_IDENTIFIER: "wrong_app",
    VerificationStatus.INVALID_ENVIRONMENT: "wrong_environment",
}
T = TypeVar("T")


def storekit_environment(config: RendioConfig) -> str:
    """`Production` for ENVIRONMENT=production, else `Sandbox`."""
    return "Production" if config.environment.lower() == "production" else "Sandbox"


def load_root_certificates(paths: Sequence[str]) -> list[bytes]:
    """The DER bytes of each file (DER or PEM; a PEM file may hold several)."""
    roots: list[bytes] = []
    for name in paths:
        path = Path(name).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"APPLE_ROOT_CERTIFICATES: cannot read {path}: {exc}",
                                     code="invalid_apple_root") from None
        try:
            if b"-----BEGIN" in data:
                roots.extend(cert.public_bytes(serialization.Encoding.DER)
                             for cert in x509.load_pem_x509_certificates(data))
            else:
                roots.append(x509.load_der_x509_certificate(data)
                             .public_bytes(serialization.Encoding.DER))
        except ValueError:
            raise ConfigurationError(f"APPLE_ROOT_CERTIFICATES: {path} is not a certificate",
                                     code="invalid_apple_root") from None
    return roots


def _millis(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value is not None else None


@dataclass(frozen=True)
class VerifiedTransaction:
    """A verified StoreKit 2 transaction: the fields the credit rules use (id, product,
    quantity, appAccountToken, revocation) and those a log or an operator reads."""

    transaction_id: str
    original_transaction_id: str | None
    product_id: str
    bundle_id: str
    environment: str
    quantity: int
    type: str | None
    app_account_token: uuid.UUID | None
    purchase_date: datetime | None
    revocation_date: datetime | None

    @classmethod
    def from_payload(cls, payload: JWSTransactionDecodedPayload) -> VerifiedTransaction:
        if not payload.transactionId or not payload.productId or not payload.bundleId:
            raise InvalidSignedData("the transaction lacks transactionId, productId or bundleId",
                                    details={"reason": "invalid_signature"})
        token = None
        if payload.appAccountToken:
            try:
                token = uuid.UUID(payload.appAccountToken)
            except ValueError:
                token = None  # not ours: the app sets it to the user's id
        return cls(
            transaction_id=payload.transactionId,
            original_transaction_id=payload.originalTransactionId,
            product_id=payload.productId,
            bundle_id=payload.bundleId,
            environment=payload.rawEnvironment or "",
            quantity=payload.quantity if payload.quantity and payload.quantity > 0 else 1,
            type=payload.rawType,
            app_account_token=token,
            purchase_date=_millis(payload.purchaseDate),
            revocation_date=_millis(payload.revocationDate),
        )


@dataclass(frozen=True)
class VerifiedNotification:
    """A verified App Store Server Notification V2 (its transaction verified too)."""

    notification_uuid: uuid.UUID
    notification_type: str
    subtype: str | None
    signed_date: datetime | None
    transaction: VerifiedTransaction | None

    @property
    def is_refund(self) -> bool:
        """REFUND or REVOKE: the purchase's credits are taken back."""
        return self.notification_type in REFUND_TYPES


class StoreKitVerifier:
    """Verifies signed data for one app. Cheap to build: the configuration is checked
    on first use, so an API without StoreKit settings still starts."""

    def __init__(
        self,
        root_certificates: Sequence[str | bytes],
        *,
        bundle_id: str | None,
        environment: str = "Sandbox",
        app_apple_id: int | None = None,
        online_checks: bool = False,
    ) -> None:
        """`root_certificates`: DER bytes, or paths of DER/PEM files (read on first use)."""
        if environment not in ("Sandbox", "Production"):
            raise ConfigurationError("StoreKit verification runs for Sandbox or Production "
                                     f"data only, not {environment!r}",
                                     code="invalid_storekit_environment")
        self._roots = list(root_certificates)
        self._bundle_id = bundle_id
        self.environment = environment
        self._app_apple_id = app_apple_id
        self.online_checks = online_checks
        self._verifier: SignedDataVerifier | None = None

    @classmethod
    def from_config(cls, config: RendioConfig) -> StoreKitVerifier:
        return cls(config.apple_root_certificates, bundle_id=config.apple_bundle_id,
                   environment=storekit_environment(config),
                   app_apple_id=config.apple_app_apple_id,
                   online_checks=config.apple_storekit_online_checks)

    def _signed_data_verifier(self) -> SignedDataVerifier:
        if self._verifier is None:
            if not self._bundle_id:
                raise ConfigurationError("StoreKit verification needs APPLE_BUNDLE_ID",
                                         code="missing_apple_bundle_id")
            if not self._roots:
                raise ConfigurationError("StoreKit verification needs APPLE_ROOT_CERTIFICATES",
                                         code="missing_apple_root")
            if self.environment == "Production" and self._app_apple_id is None:
                raise ConfigurationError("Production StoreKit data needs APPLE_APP_APPLE_ID",
                                         code="missing_app_apple_id")
            paths = [root for root in self._roots if isinstance(root, str)]
            roots = [root for root in self._roots if isinstance(root, bytes)]
            self._verifier = SignedDataVerifier(
                [*roots, *load_root_certificates(paths)], self.online_checks,
                Environment(self.environment), self._bundle_id, self._app_apple_id)
        return self._verifier

    # --- sync (no I/O unless online checks are on) -----------------------------------
    def verify_transaction_sync(self, signed_transaction: str) -> VerifiedTransaction:
        """A StoreKit 2 `jwsRepresentation`, verified and decoded."""
        verifier = self._signed_data_verifier()
        payload = _verified(lambda: verifier.verify_and_decode_signed_transaction(
            signed_transaction))
        return VerifiedTransaction.from_payload(payload)

    def verify_notification_sync(self, signed_payload: str) -> VerifiedNotification:
        """A notification's `signedPayload`, verified, with its signedTransactionInfo."""
        verifier = self._signed_data_verifier()
        decoded = _verified(lambda: verifier.verify_and_decode_notification(signed_payload))
        if not decoded.notificationUUID or not decoded.rawNotificationType:
            raise InvalidSignedData("the notification lacks notificationUUID or its type",
                                    details={"reason": "invalid_signature"})
        try:
            notification_uuid = uuid.UUID(decoded.notificationUUID)
        except ValueError:
            raise InvalidSignedData("notificationUUID is not a UUID",
                                    details={"reason": "invalid_signature"}) from None
        signed = decoded.data.signedTransactionInfo if decoded.data else None
        transaction = self.verify_transaction_sync(signed) if signed else None
        return VerifiedNotification(
            notification_uuid=notification_uuid,
            notification_type=decoded.rawNotificationType,
            subtype=decoded.rawSubtype,
            signed_date=_millis(decoded.signedDate),
            transaction=transaction,
        )

    # --- async: in a thread (a few ms of certificate work, OCSP calls when online) ---
    async def verify_transaction(self, signed_transaction: str) -> VerifiedTransaction:
        """As verify_transaction_sync, without blocking the event loop."""
        return await asyncio.to_thread(self.verify_transaction_sync, signed_transaction)

    async def verify_notification(self, signed_payload: str) -> VerifiedNotification:
        """As verify_notification_sync, without blocking the event loop."""
        return await asyncio.to_thread(self.verify_notification_sync, signed_payload)


def _verified(decode: Callable[[], T]) -> T:
    """Run one of the library's verify calls, its errors as ours."""
    try:
        return decode()
    except VerificationException as exc:
        if exc.status is VerificationStatus.RETRYABLE_VERIFICATION_FAILURE:
            raise AppleUnavailable("Apple's certificate status service is unreachable",
                                   details={"reason": "ocsp_unavailable"}) from exc
        reason = _REASONS.get(exc.status, "invalid_signature")
        raise InvalidSignedData(_MESSAGES[reason], details={"reason": reason}) from exc
    except Exception as exc:  # the library's decoding of a payload of the wrong shape
        raise InvalidSignedData(_MESSAGES["invalid_signature"],
                                details={"reason": "invalid_signature"}) from exc


_MESSAGES: dict[str, str] = {
    "invalid_signature": "the signed data is not signed by the App Store",
    "wrong_app": "the signed data belongs to another app",
    "wrong_environment": "the signed data belongs to another App Store environment",
}
