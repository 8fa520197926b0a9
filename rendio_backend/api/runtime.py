"""What the routes share for the app's life: the service-role admin, a pool for acting
as the caller (so row-level security decides what a user reads), the token verifier,
Apple's DeviceCheck client and StoreKit verifier, and a short-lived cache of the model
catalog."""

from __future__ import annotations

import time
from uuid import UUID

from fastapi import Request

from .._async.admin import AsyncRendioAdmin
from .._async.client import AsyncRendioClient
from ..apple import DeviceCheckClient, StoreKitVerifier
from ..config import RendioConfig
from ..models import Model
from ..tokens import TokenVerifier

# The catalog changes by `rendio models seed`; a minute of staleness is harmless because
# create_video_job checks availability and cost itself.
MODEL_CACHE_SECONDS = 60.0


class Runtime:
    def __init__(self, config: RendioConfig) -> None:
        self.config = config
        # The API answers a client that retries with its own key: one attempt per call.
        self.admin = AsyncRendioAdmin(config, max_retries=0)
        self.users = AsyncRendioClient(config)
        self.verifier = TokenVerifier(config, jwt_secret=config.jwt_secret)
        # Apple: both check their settings on first use, so the API starts without them.
        self.devicecheck = DeviceCheckClient.from_config(config)
        self.storekit = StoreKitVerifier.from_config(config)
        self._models: dict[UUID, Model] = {}
        self._models_loaded_at = float("-inf")

    async def model(self, model_id: UUID) -> Model | None:
        """The catalog's model (reloaded once when unknown or stale)."""
        stale = time.monotonic() - self._models_loaded_at > MODEL_CACHE_SECONDS
        if stale or model_id not in self._models:
            self._models = {m.id: m for m in await self.admin.list_models()}
            self._models_loaded_at = time.monotonic()
        return self._models.get(model_id)

    async def aclose(self) -> None:
        await self.users.aclose()
        await self.admin.aclose()
        await self.verifier.aclose()
        await self.devicecheck.aclose()


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime
