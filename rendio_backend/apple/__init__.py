"""Apple's services as the API uses them: DeviceCheck (two bits per device) and
StoreKit signed data (purchases and App Store Server Notifications V2)."""

from __future__ import annotations

from .devicecheck import DeviceBits, DeviceCheckClient
from .errors import AppleApiError, AppleUnavailable, InvalidDeviceToken, InvalidSignedData
from .storekit import StoreKitVerifier, VerifiedNotification, VerifiedTransaction

__all__ = ["AppleApiError", "AppleUnavailable", "DeviceBits", "DeviceCheckClient",
           "InvalidDeviceToken", "InvalidSignedData", "StoreKitVerifier",
           "VerifiedNotification", "VerifiedTransaction"]
