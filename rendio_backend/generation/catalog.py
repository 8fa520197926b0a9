"""The model catalog as the workers and the API read it: cached for a minute.

The catalog changes by `rendio models seed` or when a provider reports a model gone; a
minute of staleness is harmless because create_video_job checks availability and cost
itself. An id the cache does not hold is looked up alone (one indexed row): the API
takes model ids from clients, and a random one must not cost a reload of the catalog.
"""

from __future__ import annotations

import time
from uuid import UUID

from .._async.admin import AsyncRendioAdmin
from ..errors import NotFound
from ..models import Model

CACHE_SECONDS = 60.0


class ModelCache:
    """`public.models` by id, reloaded when older than CACHE_SECONDS."""

    def __init__(self, admin: AsyncRendioAdmin) -> None:
        self._admin = admin
        self._models: dict[UUID, Model] = {}
        self._loaded_at = float("-inf")

    async def get(self, model_id: UUID) -> Model | None:
        if time.monotonic() - self._loaded_at > CACHE_SECONDS:
            self._models = {model.id: model for model in await self._admin.list_models()}
            self._loaded_at = time.monotonic()
        if model_id not in self._models:  # new since the last load, or no model at all
            try:
                self._models[model_id] = await self._admin.get_model(model_id)
            except NotFound:
                return None
        return self._models[model_id]
