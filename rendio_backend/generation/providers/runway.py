"""Runway's API (`RUNWAY_BASE_URL`, default https://api.dev.runwayml.com): submit, then poll.

- Submit: `POST /v1/text_to_video` or `/v1/image_to_video` (image-to-video models, or
  when the input carries an image) with `Authorization: Bearer $RUNWAY_API_KEY` and
  `X-Runway-Version: 2024-11-06`; body `{model, promptText, ratio?, duration?,
  promptImage?, seed?, audio?}`; the answer is `{id}`.
- Poll: `GET /v1/tasks/{id}` → `status` PENDING | THROTTLED | RUNNING | SUCCEEDED |
  FAILED | CANCELLED, `output` (URLs) once SUCCEEDED, `failure` / `failureCode` once
  FAILED. Cancel: `DELETE /v1/tasks/{id}`.
- No webhooks: the worker polls.

The task URL is stored as the request's status, response and cancel URL, like fal's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ...config import RendioConfig
from ...errors import ModelUnavailable, ProviderError
from ...models import Model, VideoJob
from ._http import HttpAdapter, json_object
from .base import (
    ProviderRequest,
    ProviderResult,
    RequestState,
    WebhookEvent,
    WebhookRejected,
    input_of,
)

__all__ = ["RUNWAY_VERSION", "RunwayProvider", "result_from_task", "state_from_task",
           "submission"]

RUNWAY_VERSION = "2024-11-06"

_STATES = {"PENDING": RequestState.QUEUED, "THROTTLED": RequestState.QUEUED,
           "RUNNING": RequestState.RUNNING, "SUCCEEDED": RequestState.DONE,
           "FAILED": RequestState.FAILED, "CANCELLED": RequestState.CANCELLED}
# Rendio's aspect ratios as the pixel ratios Runway takes.
_RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "1:1": "960:960", "4:3": "1104:832",
           "3:4": "832:1104", "21:9": "1584:672"}
# Deleting a finished or unknown task leaves nothing to cancel.
_CANCEL_SETTLED = frozenset({404, 410})


def _duration(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.removesuffix("s").isdigit():
        return int(value.removesuffix("s"))
    return None


def _is_pixel_ratio(value: str) -> bool:
    """True for Runway's own form, width:height in pixels ("1280:720"), not "16:9"."""
    parts = value.split(":")
    return len(parts) == 2 and all(part.isdigit() and int(part) >= 100 for part in parts)


def submission(model: Model, job: VideoJob) -> tuple[str, dict[str, Any]]:
    """(path, body) of the create call for a job; settings Runway has no name for are
    left out."""
    values = input_of(job)
    body: dict[str, Any] = {"model": model.provider_model_id,
                            "promptText": values.get("prompt")}
    aspect = values.get("ratio") or values.get("aspect_ratio")
    if isinstance(aspect, str) and (aspect in _RATIOS or _is_pixel_ratio(aspect)):
        body["ratio"] = _RATIOS.get(aspect, aspect)
    duration = _duration(values.get("duration"))
    if duration is not None:
        body["duration"] = duration
    if isinstance(values.get("seed"), int):
        body["seed"] = values["seed"]
    if isinstance(values.get("generate_audio"), bool):
        body["audio"] = values["generate_audio"]
    image = values.get("promptImage") or values.get("image_url")
    if isinstance(image, str) and image:
        body["promptImage"] = image
    image_to_video = "promptImage" in body or model.category == "image-to-video"
    return ("/v1/image_to_video" if image_to_video else "/v1/text_to_video"), body


def state_from_task(task: Mapping[str, Any]) -> RequestState:
    """A task's state (THROTTLED waits in Runway's queue, so it counts as queued)."""
    status = task.get("status")
    if isinstance(status, str) and status in _STATES:
        return _STATES[status]
    raise ProviderError(f"runway answered an unknown task status: {status!r}",
                        retryable=True, details={"provider": "runway"})


def result_from_task(task: Mapping[str, Any]) -> ProviderResult:
    """A finished task's outcome; ProviderError(retryable) while it is not finished."""
    state = state_from_task(task)
    if state is RequestState.DONE:
        output = task.get("output")
        url = output[0] if isinstance(output, list) and output else None
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return ProviderResult(ok=True, video_url=url)
        return ProviderResult(ok=False, error="runway's task succeeded without an output URL")
    if state is RequestState.FAILED:
        code, failure = task.get("failureCode"), task.get("failure")
        error = ": ".join(str(part) for part in (code, failure) if part) or "task failed"
        return ProviderResult(ok=False, error=f"runway: {error}"[:1000])
    if state is RequestState.CANCELLED:
        return ProviderResult(ok=False, error="runway: the task was cancelled")
    raise ProviderError("runway's task is not finished yet", retryable=True,
                        code="not_finished", details={"provider": "runway"})


class RunwayProvider(HttpAdapter):
    name = "runway"
    supports_webhooks = False

    def __init__(self, config: RendioConfig, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(config, http)
        self.base_url = config.runway_base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        key = self._key(self.config.runway_api_key, "RUNWAY_API_KEY")
        return {"Authorization": f"Bearer {key}", "X-Runway-Version": RUNWAY_VERSION}

    async def submit(self, model: Model, job: VideoJob, *,
                     webhook_url: str | None) -> ProviderRequest:
        if not model.provider_model_id:
            raise ModelUnavailable(f"model {model.id} has no provider model id",
                                   details={"model_id": str(model.id)})
        path, body = submission(model, job)
        response = await self._send("POST", self.base_url + path, submit=True,
                                    model_id=model.provider_model_id,
                                    headers=self._headers(), json=body)
        task_id = json_object(self.name, response).get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("runway accepted the task but gave no id", retryable=False,
                                details={"provider": "runway"})
        url = f"{self.base_url}/v1/tasks/{task_id}"
        return ProviderRequest(request_id=task_id, status_url=url, response_url=url,
                               cancel_url=url)

    def _task_url(self, request: ProviderRequest) -> str:
        return request.status_url or f"{self.base_url}/v1/tasks/{request.request_id}"

    async def _task(self, request: ProviderRequest) -> dict[str, Any]:
        response = await self._send("GET", self._task_url(request), headers=self._headers())
        return json_object(self.name, response)

    async def state(self, request: ProviderRequest, model: Model) -> RequestState:
        return state_from_task(await self._task(request))

    async def result(self, request: ProviderRequest, model: Model) -> ProviderResult:
        return result_from_task(await self._task(request))

    async def cancel(self, request: ProviderRequest, model: Model) -> None:
        await self._send("DELETE", request.cancel_url or self._task_url(request),
                         headers=self._headers(), ok=_CANCEL_SETTLED)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        raise WebhookRejected("runway sends no webhooks")
