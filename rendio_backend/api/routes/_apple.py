"""How the Apple routes answer Apple's failures: a token or signature Apple's checks
refuse is the caller's 400; Apple unreachable is 503 `upstream_unavailable` (nothing
was changed, retry); Apple refusing our own credentials is our fault, a logged 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ...apple import AppleApiError, AppleUnavailable, InvalidDeviceToken, InvalidSignedData
from ..errors import ApiError

log = logging.getLogger("rendio.api")

# Seconds a client is told to wait after Apple failed: long enough for a blip to pass.
RETRY_AFTER_SECONDS = 5


@contextmanager
def answering_apple_errors(field: str) -> Iterator[None]:
    """Turn the Apple errors raised inside into the API's answers (`field`: the input)."""
    try:
        yield
    except InvalidDeviceToken:
        raise ApiError(400, "invalid_request", "Apple DeviceCheck refused the device token",
                       field=field, reason="invalid_device_token") from None
    except InvalidSignedData as exc:
        raise ApiError(400, "invalid_request", exc.message, field=field,
                       reason=exc.details.get("reason", "invalid_signature")) from None
    except AppleUnavailable as exc:
        log.warning("Apple unavailable: %s %s", exc, exc.details)
        raise ApiError(503, "upstream_unavailable",
                       "Apple's service is unavailable; try again shortly",
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    except AppleApiError as exc:
        log.error("Apple refused our request (check the APPLE_* settings): %s %s",
                  exc, exc.details)
        raise ApiError(500, "internal_error", "internal error") from None
