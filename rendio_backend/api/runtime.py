"""What the routes share for the app's life: the service-role admin, a pool for acting
as the caller (so row-level security decides what a user reads), the token verifier,
Apple's DeviceCheck client and StoreKit verifier, a short-lived cache of the model
catalog, and the generation finisher with the providers whose webhooks it receives."""

from __future__ import annotations

from uuid import UUID

import httpx
from fastapi import Request

from .._async.admin import AsyncRendioAdmin
from .._async.client import AsyncRendioClient
from ..apple import DeviceCheckClient, StoreKitVerifier
from ..config import RendioConfig
from ..generation.catalog import ModelCache
from ..generation.finisher import Finisher
from ..generation.providers.base import Provider
from ..models import Model
from ..tokens import TokenVerifier


class Runtime:
    def __init__(self, config: RendioConfig) -> None:
        self.config = config
        # The API answers a client that retries with its own key: one attempt per call.
        self.admin = AsyncRendioAdmin(config, max_retries=0)
        self.users = AsyncRendioClient(config)
        self.verifier = TokenVerifier(config)
        # Apple: both check their settings on first use, so the API starts without them.
        self.devicecheck = DeviceCheckClient.from_config(config)
        self.storekit = StoreKitVerifier.from_config(config)
        self.models = ModelCache(self.admin)
        # Webhooks finish jobs as the worker's poller does (whichever comes first).
        self.finisher = Finisher(self.admin)
        self._provider_http: httpx.AsyncClient | None = None
        self._providers: dict[str, Provider] = {}

    async def model(self, model_id: UUID) -> Model | None:
        """The catalog's model (reloaded once when unknown or stale)."""
        return await self.models.get(model_id)

    def provider(self, name: str) -> Provider:
        """The adapter of provider `name` (made on first use: the API starts without
        provider settings)."""
        provider = self._providers.get(name)
        if provider is None:
            from ..generation.providers.registry import provider_for

            if self._provider_http is None:
                self._provider_http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
            provider = provider_for(name, self.config, http=self._provider_http)
            self._providers[name] = provider
        return provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        if self._provider_http is not None:
            await self._provider_http.aclose()
        await self.finisher.aclose()
        await self.users.aclose()
        await self.admin.aclose()
        await self.verifier.aclose()
        await self.devicecheck.aclose()


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime
