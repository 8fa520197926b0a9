"""What the API takes and answers (pydantic): the OpenAPI document is generated from it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ..models import JobStatus, Page, VideoJobSummary


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# PostgreSQL text cannot hold U+0000: a NUL in a stored string is the caller's 400, not a
# failed insert's 500.
NO_NUL = r"^[^\x00]*$"


class GenerateVideoRequest(_Strict):
    model_id: UUID
    prompt: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="Validated against the model's settings.")


class DeviceCheckRequest(_Strict):
    device_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL,
                           description="The app's identifierForVendor.")
    # Apple's tokens are a few KiB of base64.
    device_token: str = Field(min_length=1, max_length=16384,
                              description="A fresh DeviceCheck token (DCDevice, base64).")


class UpdateCreditsRequest(_Strict):
    signed_transaction: str = Field(min_length=1, max_length=32768,
                                    description="StoreKit 2 Transaction.jwsRepresentation.")


class AppleNotificationRequest(BaseModel):
    """App Store Server Notifications V2 as Apple posts them (other fields ignored)."""

    signed_payload: str = Field(alias="signedPayload", min_length=1, max_length=65536)


class NotificationReceipt(BaseModel):
    """200 to Apple (any 2xx stops its retries); says what the notification did."""

    received: bool = True
    already_processed: bool
    outcome: str


class JobAccepted(BaseModel):
    """202 of generate-video; a replay answers the same bytes."""

    job_id: UUID
    status: JobStatus
    credits_used: int
    credits_remaining: int


# A page of jobs as GET /get-video-jobs answers it.
VideoJobsPage = Page[VideoJobSummary]


class Health(BaseModel):
    status: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: a stable `code`, a message, and details beside them."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's documented error answers: each status in the envelope (ErrorBody)."""
    return {status: {"model": ErrorBody} for status in statuses}
