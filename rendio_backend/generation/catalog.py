"""The model catalog as the workers and the API read it: cached for a minute.

The catalog changes by `rendio models seed` or when a provider reports a model gone; a
minute of staleness is harmless because create_video_job checks availability and cost
itself, and an unknown id reloads at once.
"""

from __future__ import annotations

import time
from uuid import UUID

from .._async.admin import AsyncRendioAdmin
from ..models import Model

CACHE_SECONDS = 60.0


class ModelCache:
    """`public.models` by id, reloaded when older than CACHE_SECONDS or asked for an id
    it does not hold."""

    def __init__(self, admin: AsyncRendioAdmin, *, seconds: float = CACHE_SECONDS) -> None:
        self._admin = admin
        self._seconds = seconds
        self._models: dict[UUID, Model] = {}
        self._loaded_at = float("-inf")

    async def get(self, model_id: UUID) -> Model | None:
        stale = time.monotonic() - self._loaded_at > self._seconds
        if stale or model_id not in self._models:
            self._models = {model.id: model for model in await self._admin.list_models()}
            self._loaded_at = time.monotonic()
        return self._models.get(model_id)
