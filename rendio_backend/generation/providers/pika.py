"""Pika: no adapter yet. Every submission is refused with ModelUnavailable, so a Pika
row of the catalog is marked unavailable and its jobs are failed and refunded."""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import ModelUnavailable, ProviderError
from ...models import Model, VideoJob
from .base import ProviderRequest, ProviderResult, RequestState, WebhookEvent, WebhookRejected

__all__ = ["PikaProvider"]


class PikaProvider:
    name = "pika"
    supports_webhooks = False

    async def submit(self, model: Model, job: VideoJob, *,
                     webhook_url: str | None) -> ProviderRequest:
        raise ModelUnavailable("Pika is not available", details={"provider": "pika"})

    def _none(self) -> ProviderError:
        # Nothing was ever submitted to Pika, so no request of it can exist.
        return ProviderError("Pika has no requests", retryable=False,
                             details={"provider": "pika"})

    async def state(self, request: ProviderRequest, model: Model) -> RequestState:
        raise self._none()

    async def result(self, request: ProviderRequest, model: Model) -> ProviderResult:
        raise self._none()

    async def cancel(self, request: ProviderRequest, model: Model) -> None:
        return None

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        raise WebhookRejected("pika sends no webhooks")

    async def aclose(self) -> None:
        return None
