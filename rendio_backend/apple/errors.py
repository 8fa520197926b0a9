"""Errors of the Apple integrations, in the library's one hierarchy (RendioError).

The HTTP API answers them as: InvalidDeviceToken and InvalidSignedData 400
`invalid_request`, AppleUnavailable 503 `upstream_unavailable`, AppleApiError 500 (a
configuration or programming fault on our side that the app cannot fix).
"""

from __future__ import annotations

from ..errors import InvalidRequest, RendioError

__all__ = ["AppleApiError", "AppleUnavailable", "InvalidDeviceToken", "InvalidSignedData"]


class InvalidDeviceToken(InvalidRequest, code="invalid_device_token"):
    """DeviceCheck refused the device token (missing, malformed or not Apple's)."""


class InvalidSignedData(InvalidRequest, code="invalid_signed_data"):
    """StoreKit signed data failed verification.

    `details["reason"]`: `invalid_signature` (signature, certificate chain, algorithm or
    shape), `wrong_app` (another bundle id / app id) or `wrong_environment`.
    """


class AppleUnavailable(RendioError, code="upstream_unavailable", status=503):
    """Apple could not be reached, timed out or failed (5xx, 429); transient."""

    retryable = True


class AppleApiError(RendioError, code="apple_api_error", status=500):
    """Apple refused our own credentials or request (401/403, a bad URL) or answered
    something unexpected: a fault of our configuration, not of the caller."""
