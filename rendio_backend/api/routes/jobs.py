"""`GET /get-video-status` and `GET /get-video-jobs`: the caller's own jobs.

Both read as the caller (the user's token through PostgREST and Storage), so row-level
security decides what is theirs: another user's job is simply not found (404, never
403), and signed URLs are made by Storage under the same policies.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from ...models import FailureReason, JobStatus, VideoJobSummary, VideoStatus
from ...models import VideoJob as JobRow
from ..schemas import VideoJobsPage, error_responses
from ..security import CurrentCaller, CurrentRuntime

router = APIRouter(tags=["jobs"])

SIGNED_URL_SECONDS = 3600
# What a client sees of a failure: the provider's own text stays server-side.
GENERATION_FAILED = FailureReason(
    code="generation_failed",
    message="The video could not be generated. The credits it cost were refunded.")
_ERRORS = error_responses(400, 401, 404)


async def _none() -> str | None:
    return None


def _job(row: JobRow) -> dict[str, object]:
    return {"job_id": row.job_id, "model_id": row.model_id, "prompt": row.prompt,
            "settings": row.settings, "status": row.status, "credits_used": row.credits_used,
            "created_at": row.created_at, "completed_at": row.completed_at}


@router.get("/get-video-status", response_model=VideoStatus, responses=_ERRORS)
async def get_video_status(
    job_id: Annotated[UUID, Query(description="The job's id.")],
    caller: CurrentCaller,
    runtime: CurrentRuntime,
) -> VideoStatus:
    """One of the caller's jobs; a completed one carries signed URLs (one hour)."""
    user = runtime.users.with_access_token(caller.token)
    row = await user.get_job(job_id)
    status = VideoStatus.model_validate(_job(row))
    if row.status is JobStatus.COMPLETED:
        expires = datetime.now(UTC) + timedelta(seconds=SIGNED_URL_SECONDS)
        # Signed from the row just read (RLS already let the caller see it), both at once.
        video, thumbnail = await asyncio.gather(
            user.video_url(row, expires_in=SIGNED_URL_SECONDS) if row.video_url
            else _none(),
            user.thumbnail_url(row, expires_in=SIGNED_URL_SECONDS) if row.thumbnail_url
            else _none())
        status = status.model_copy(update={"video_url": video, "thumbnail_url": thumbnail,
                                           "urls_expire_at": expires})
    elif row.status is JobStatus.FAILED:
        status = status.model_copy(update={"failure": GENERATION_FAILED})
    return status


@router.get("/get-video-jobs", response_model=VideoJobsPage, responses=_ERRORS)
async def get_video_jobs(
    caller: CurrentCaller,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")]
    = None,
) -> VideoJobsPage:
    """The caller's jobs, newest first; soft-deleted ones are left out."""
    page = await runtime.users.with_access_token(caller.token).list_jobs(limit=limit,
                                                                          cursor=cursor)
    return VideoJobsPage(items=[VideoJobSummary.model_validate(_job(row))
                                for row in page.items], next_cursor=page.next_cursor)
