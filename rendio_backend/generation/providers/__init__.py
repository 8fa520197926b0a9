"""Video provider adapters behind one interface (`base.Provider`); `provider_for` picks
one by `models.provider`. fal (queue API and signed webhooks), Runway (polled), Pika
(reports unavailable)."""

from .base import (
    Provider,
    ProviderRequest,
    ProviderResult,
    RequestState,
    WebhookEvent,
    WebhookRejected,
    input_of,
)
from .registry import PROVIDERS, provider_for

__all__ = ["PROVIDERS", "Provider", "ProviderRequest", "ProviderResult", "RequestState",
           "WebhookEvent", "WebhookRejected", "input_of", "provider_for"]
