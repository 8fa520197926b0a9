"""`POST /generate-video`: charge and queue one generation, idempotently.

The money rules live in `create_video_job` (one transaction: key check, availability,
in-flight limit, charge, job, ledger row, stored response); this route authenticates,
validates the settings against the model and shapes the answer.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from ..._core.settings import validate_settings
from ..errors import ApiError
from ..schemas import GenerateVideoRequest, JobAccepted, error_responses
from ..security import CurrentCaller, CurrentRuntime

router = APIRouter(tags=["generation"])

_ERRORS = error_responses(400, 401, 402, 404, 409, 413, 422, 429)


def _idempotency_key(value: str | None) -> UUID:
    if not value:
        raise ApiError(400, "invalid_request", "the Idempotency-Key header is required",
                       field="Idempotency-Key")
    try:
        return UUID(value)
    except ValueError:
        raise ApiError(400, "invalid_request", "the Idempotency-Key header must be a UUID",
                       field="Idempotency-Key") from None


@router.post("/generate-video", status_code=202, response_model=JobAccepted, responses=_ERRORS)
async def generate_video(
    body: GenerateVideoRequest,
    caller: CurrentCaller,
    runtime: CurrentRuntime,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Charge the model's cost and create a pending job.

    The same key with the same body answers the stored response (`Idempotent-Replayed:
    true`), with another body 422 `idempotency_key_reused`, while the first request
    still runs 409 `idempotency_key_in_use`.
    """
    key = _idempotency_key(idempotency_key)
    model = await runtime.model(body.model_id)
    if model is None:
        raise ApiError(404, "not_found", "model not found", resource="model",
                       id=str(body.model_id))
    validate_settings(body.settings, model.settings_schema)
    job = await runtime.admin.create_job(caller.user_id, body.model_id, body.prompt,
                                         body.settings, idempotency_key=key)
    answer = JobAccepted(job_id=job.job_id, status=job.status, credits_used=job.credits_used,
                         credits_remaining=job.credits_remaining)
    headers = {"Idempotent-Replayed": "true"} if job.replayed else None
    return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers=headers)
