"""The local stack's stand-ins for Apple's servers, reached over HTTP like the real
ones: DeviceCheck (`devicecheck`) and the App Store's signing of StoreKit data
(`storekit`). `apple_settings` is what a RendioConfig needs to use them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import StackConfig


def apple_settings(config: StackConfig) -> dict[str, Any]:
    """RendioConfig fields pointing Apple's services at the stack's fakes (the keys and
    the StoreKit root are made under the state directory on first use)."""
    from .devicecheck import FAKE_KEY_ID, FAKE_TEAM_ID, private_key_pem
    from .storekit import root_certificate_path

    return {
        "apple_bundle_id": config.apple_client_ids[0],
        "apple_team_id": FAKE_TEAM_ID,
        "apple_devicecheck_key_id": FAKE_KEY_ID,
        "apple_devicecheck_private_key": private_key_pem(config),
        "apple_devicecheck_url": f"{config.api_url}/_fake/apple/devicecheck",
        "apple_root_certificates": (str(root_certificate_path(config)),),
    }
