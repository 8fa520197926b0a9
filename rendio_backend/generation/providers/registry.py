"""The adapter for a model's provider (`models.provider`)."""

from __future__ import annotations

import httpx

from ...config import RendioConfig
from ...errors import ModelUnavailable
from .base import Provider
from .fal import FalProvider
from .pika import PikaProvider
from .runway import RunwayProvider

__all__ = ["PROVIDERS", "provider_for"]

PROVIDERS = ("fal", "runway", "pika")


def provider_for(name: str, config: RendioConfig, *,
                 http: httpx.AsyncClient | None = None) -> Provider:
    """A new adapter for provider `name`; `http` is shared and stays the caller's to
    close, else the adapter makes its own (closed by `aclose()`).

    An unknown name raises ModelUnavailable: a catalog row naming a provider this
    version cannot call is a model that is not available, not a crash.
    """
    if name == "fal":
        return FalProvider(config, http=http)
    if name == "runway":
        return RunwayProvider(config, http=http)
    if name == "pika":
        return PikaProvider()
    raise ModelUnavailable(f"no adapter for provider {name!r}", details={"provider": name})
