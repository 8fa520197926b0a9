"""The one small interface every video provider adapter implements.

A provider accepts a submission (with a webhook URL when it supports webhooks), tells a
request's state, gives its result, cancels it, and parses and verifies its webhooks.
What it returns for a submission (`ProviderRequest`) is stored on the job
(`mark_job_processing`) and used as given later: fal's URLs are never rebuilt.
Model ids come from the catalog (`models.provider_model_id`), never from code.

Errors: `rendio_backend.errors.ProviderError(retryable=...)` for anything the provider
did wrong or could not do (429, 5xx and timeouts are retryable; 4xx are not);
`ModelUnavailable` when the provider says the model is gone (404/410 on submit);
`WebhookRejected` for a webhook that fails verification (bad or stale signature).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from ...models import Model, VideoJob


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProviderRequest(_Frozen):
    """A provider's answer to a submission: its id and the URLs to use afterwards."""

    request_id: str
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None


class RequestState(StrEnum):
    """Where a provider request is. DONE is not success: the result decides."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProviderResult(_Frozen):
    """The outcome of a finished request.

    `ok` with `video_url` (and `thumbnail_url` when the provider makes one) on success;
    else `error`, the provider's own text, kept server-side (never shown to clients).
    """

    ok: bool
    video_url: str | None = None
    video_content_type: str | None = None
    thumbnail_url: str | None = None
    error: str | None = None


class WebhookEvent(_Frozen):
    """A verified webhook: which request it is about and how it ended."""

    request_id: str
    result: ProviderResult


class WebhookRejected(Exception):
    """A webhook that failed verification; answer 401 and change nothing."""


class Provider(Protocol):
    """An adapter for one provider (`models.provider`: "fal", "runway", "pika")."""

    name: str
    supports_webhooks: bool

    async def submit(self, model: Model, job: VideoJob, *,
                     webhook_url: str | None) -> ProviderRequest: ...

    async def state(self, request: ProviderRequest, model: Model) -> RequestState: ...

    async def result(self, request: ProviderRequest, model: Model) -> ProviderResult: ...

    async def cancel(self, request: ProviderRequest, model: Model) -> None: ...

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify then parse; WebhookRejected when verification fails."""
        ...

    async def aclose(self) -> None: ...


def input_of(job: VideoJob) -> dict[str, Any]:
    """The provider input for a job: its prompt and its validated settings."""
    return {"prompt": job.prompt, **job.settings}
