"""GoTrue's request rate limits: a token bucket per client address and route group.

As supabase/auth `internal/api/apilimiter` builds them with tollbooth: `/token` (every
grant) refills at `token_refresh` per 5 minutes, email sign-ups and `PUT /user` at
`sign_in_sign_ups` per 5 minutes, `/verify` at `token_verifications` per 5 minutes, all
with bursts of 30; anonymous sign-ins at `anonymous_users` per hour, with a burst of as
many. An empty bucket answers 429 `over_request_rate_limit`. The client address is the
first `X-Forwarded-For` entry when there is one (hosted Auth sits behind a proxy that
sets it), else the peer's. Buckets live in the gateway process, as GoTrue's live in its.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..auth_settings import RateLimits
from ._errors import ApiError

log = logging.getLogger("rendio.local.auth")

_FIVE_MINUTES = 300.0
_HOUR = 3600.0
_BURST = 30
# Idle buckets are forgotten after an hour (tollbooth's DefaultExpirationTTL).
_IDLE = 3600.0


@dataclass
class Buckets:
    """Token buckets of one limit, by client address (golang.org/x/time/rate semantics:
    a full bucket holds `burst` tokens, refilled at `per_second`)."""

    per_second: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)
    _pruned: float = -math.inf

    def take(self, key: str) -> bool:
        """Spend one token of `key`'s bucket; False (spending nothing) when it is empty."""
        now = self.clock()
        self._prune(now)
        tokens, since = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - since) * self.per_second)
        allowed = tokens >= 1.0
        self._state[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def _prune(self, now: float) -> None:
        if now - self._pruned < 60:
            return
        self._pruned = now
        for key in [k for k, (_, since) in self._state.items() if now - since > _IDLE]:
            del self._state[key]


class RateLimiter:
    """The limits of one Auth service; `check` raises GoTrue's 429 when one is reached."""

    def __init__(self, limits: RateLimits) -> None:
        self.enabled = limits.enabled
        self.token = Buckets(limits.token_refresh / _FIVE_MINUTES, _BURST)
        self.sign_ups = Buckets(limits.sign_in_sign_ups / _FIVE_MINUTES, _BURST)
        self.verify = Buckets(limits.token_verifications / _FIVE_MINUTES, _BURST)
        self.anonymous = Buckets(limits.anonymous_users / _HOUR, limits.anonymous_users)

    def announce(self) -> None:
        """Say loudly when the limits are off: hosted Supabase never turns them off."""
        if not self.enabled:
            log.warning("auth: RATE LIMITS ARE OFF (RENDIO_AUTH_RATE_LIMITS=off): sign-ins, "
                        "sign-ups, refreshes and verifications are never answered 429 here, "
                        "but hosted Supabase limits them per client address")

    def check(self, buckets: Buckets, client: str) -> None:
        """Spend one request of `client` (its address) from `buckets`."""
        if self.enabled and not buckets.take(client):
            raise ApiError(429, "over_request_rate_limit", "Request rate limit reached")
