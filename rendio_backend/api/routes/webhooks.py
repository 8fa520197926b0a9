"""`POST /webhooks/fal`: fal tells us a queued request ended.

Not behind user auth: the signature is the auth. The adapter verifies it first
(Ed25519 over fal's documented message, keys from its JWKS, timestamp within ±5
minutes); a bad or stale one is 401 and changes nothing. Then the job whose
`provider_job_id` is the request's id is completed or failed through the same finisher
the worker's poller uses, whichever of the two comes first.

fal retries a delivery that does not get a 2xx (10 times over 2 hours), so: a repeat, a
late arrival after the job timed out, or a request no job recorded (a submission lost
with a crashed worker, or one not recorded yet: the poller finishes that job) all
answer 200 and change nothing; a transient failure (the video's host or Storage down)
answers 503 so fal tries again, while the poller retries on its own too.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ...errors import NotFound, ProviderError, RendioError
from ...generation.providers.base import WebhookRejected
from ..errors import ApiError
from ..schemas import error_responses
from ..security import CurrentRuntime

log = logging.getLogger("rendio.api")
router = APIRouter(tags=["webhooks"])


class WebhookReceipt(BaseModel):
    """What the webhook did: `completed`, `failed`, `already_final` or `unknown_request`."""

    request_id: str
    outcome: str


@router.post("/webhooks/fal", response_model=WebhookReceipt,
             responses=error_responses(400, 401, 413, 503))
async def fal_webhook(request: Request, runtime: CurrentRuntime) -> WebhookReceipt:
    """fal's completion webhook for a queued request (the signature is the auth)."""
    provider = runtime.provider("fal")
    body = await request.body()
    try:
        event = await provider.parse_webhook(request.headers, body)
    except WebhookRejected as exc:
        log.warning("fal webhook rejected: %s", exc)
        raise ApiError(401, "invalid_signature",
                       "the webhook signature is missing, invalid or stale") from None
    except ProviderError as exc:  # e.g. fal's JWKS unreachable (retryable) or a bad body
        if exc.retryable:
            raise _try_again() from exc
        raise ApiError(400, "invalid_request", "the webhook body is not a fal webhook") from exc
    try:
        job = await runtime.admin.get_job_by_provider_request(provider.name, event.request_id)
    except NotFound:
        log.info("fal webhook for unknown request %s", event.request_id)
        return WebhookReceipt(request_id=event.request_id, outcome="unknown_request")
    try:
        outcome = await runtime.finisher.finish(job, event.result, provider=provider.name)
    except NotFound:  # the job went with its user meanwhile: nothing left to finish
        return WebhookReceipt(request_id=event.request_id, outcome="unknown_request")
    except RendioError as exc:  # transient (ProviderError included): the job is unchanged
        log.warning("fal webhook for job %s not finished yet: %s", job.job_id, exc)
        raise _try_again() from exc
    return WebhookReceipt(request_id=event.request_id, outcome=outcome.value)


def _try_again() -> ApiError:
    return ApiError(503, "upstream_unavailable", "the webhook could not be handled now; retry",
                    headers={"Retry-After": "30"})
