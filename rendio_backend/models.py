"""Typed rows and responses (pydantic v2), validated when they come in from Supabase.

Row models ignore unknown columns, so a later migration that adds a column does not
break deployed clients; every model is immutable.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AppStoreNotificationResult",
    "AuthSession",
    "Balance",
    "BucketSpec",
    "CLIENT_JOB_COLUMNS",
    "ChangeAction",
    "CreditGrant",
    "CreditReason",
    "CreditRedemption",
    "CreditTransaction",
    "Deduction",
    "DeviceCheckResult",
    "DeviceClaim",
    "FailureReason",
    "IapProduct",
    "IapRefund",
    "JobCreated",
    "JobFailure",
    "JobStatus",
    "LedgerViolation",
    "Model",
    "Page",
    "ProvisionItem",
    "ProvisionReport",
    "SeedItem",
    "SeedReport",
    "Theme",
    "Tier",
    "UploadedObject",
    "User",
    "VideoJob",
    "VideoJobSummary",
    "VideoStatus",
]

T = TypeVar("T")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())


class JobStatus(StrEnum):
    """The life cycle of a video job; completed and failed are final."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True for completed and failed."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class CreditReason(StrEnum):
    """Why a balance changed (quota_log.reason)."""

    INITIAL_GRANT = "initial_grant"
    VIDEO_GENERATION = "video_generation"
    GENERATION_FAILED_REFUND = "generation_failed_refund"
    IAP_PURCHASE = "iap_purchase"
    IAP_REFUND = "iap_refund"
    ADMIN_ADJUSTMENT = "admin_adjustment"


class Tier(StrEnum):
    """A user's tier."""

    FREE = "free"
    PREMIUM = "premium"


class Theme(StrEnum):
    """A user's theme preference."""

    LIGHT = "light"
    DARK = "dark"
    SYSTEM = "system"


class ChangeAction(StrEnum):
    """What provisioning or seeding did to one item."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class User(_Frozen):
    """A row of public.users (one per Supabase Auth user)."""

    id: UUID
    email: str | None = None
    device_id: str | None = None
    apple_sub: str | None = None
    is_guest: bool
    tier: Tier
    credits_remaining: int
    credits_total: int
    max_jobs_in_flight: int = 3
    initial_grant_claimed: bool
    language: str
    theme_preference: Theme
    ledger_version: int = 0
    created_at: datetime
    updated_at: datetime


class Model(_Frozen):
    """A generation model of the catalog (public.models)."""

    id: UUID
    name: str
    category: str
    description: str | None = None
    cost_per_generation: int
    provider: str
    provider_model_id: str | None = None
    is_featured: bool
    is_available: bool
    thumbnail_url: str | None = None
    settings_schema: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime | None = None


class VideoJob(_Frozen):
    """A row of public.video_jobs. video_url / thumbnail_url are Storage paths."""

    job_id: UUID
    user_id: UUID
    model_id: UUID
    prompt: str
    settings: dict[str, Any] = Field(default_factory=dict)
    status: JobStatus
    video_url: str | None = None
    thumbnail_url: str | None = None
    credits_used: int
    error_message: str | None = None
    provider: str | None = None
    provider_job_id: str | None = None
    provider_status_url: str | None = None
    provider_response_url: str | None = None
    provider_cancel_url: str | None = None
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    deadline_at: datetime | None = None
    started_at: datetime | None = None
    created_at: datetime
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    deleted_at: datetime | None = None


# The columns of video_jobs a client may read; the provider's ids, URLs, raw errors and
# the worker's lease stay server-side (column privileges in supabase/migrations).
CLIENT_JOB_COLUMNS = ",".join((
    "job_id", "user_id", "model_id", "prompt", "settings", "status", "video_url",
    "thumbnail_url", "credits_used", "deadline_at", "started_at", "created_at", "updated_at",
    "completed_at", "deleted_at",
))


# --- what the HTTP API answers (the library's API calls return these too) -----------
class FailureReason(_Frozen):
    """Why a job failed, safe to show: never a provider's raw error text."""

    code: str
    message: str


class VideoJobSummary(_Frozen):
    """A job as the app sees it (GET /get-video-jobs)."""

    job_id: UUID
    model_id: UUID
    prompt: str
    settings: dict[str, Any] = Field(default_factory=dict)
    status: JobStatus
    credits_used: int
    created_at: datetime
    completed_at: datetime | None = None


class VideoStatus(VideoJobSummary):
    """GET /get-video-status: once completed, signed URLs valid for one hour."""

    video_url: str | None = None
    thumbnail_url: str | None = None
    urls_expire_at: datetime | None = None
    failure: FailureReason | None = None


class CreditTransaction(_Frozen):
    """One row of the credit ledger (public.quota_log)."""

    id: UUID
    user_id: UUID
    job_id: UUID | None = None
    change: int
    reason: CreditReason
    transaction_id: str | None = None
    balance_after: int
    total_after: int
    shortfall: int = 0
    version: int
    created_at: datetime


class Balance(_Frozen):
    """The caller's balance (get_my_credits)."""

    credits_remaining: int
    credits_total: int
    tier: Tier
    is_guest: bool


class Page(_Frozen, Generic[T]):
    """One page of a list, newest first; pass `next_cursor` to get the next one."""

    items: list[T]
    next_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        """True when another page may follow."""
        return self.next_cursor is not None


class AuthSession(_Frozen):
    """The signed-in user's session."""

    user_id: UUID
    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    expires_at: int | None = None
    is_anonymous: bool = False


class JobCreated(_Frozen):
    """create_video_job's answer; `replayed` is true for a stored idempotent response.

    `idempotency_key` is the key the job was created under (the caller's, or the one
    create_job generated): keep it to retry the same request safely.
    """

    job_id: UUID
    status: JobStatus
    credits_used: int
    credits_remaining: int
    idempotency_key: UUID
    replayed: bool = False
    status_code: int = 202


class CreditGrant(_Frozen):
    """add_credits' answer; `already_processed` for a replayed transaction id."""

    already_processed: bool
    credits_remaining: int
    credits_total: int
    entry_id: UUID


class Deduction(_Frozen):
    """deduct_credits' answer."""

    credits_remaining: int
    entry_id: UUID


class IapRefund(_Frozen):
    """apply_iap_refund's answer; `shortfall` is what was already spent."""

    already_processed: bool
    credits_removed: int
    shortfall: int
    credits_remaining: int


class IapProduct(_Frozen):
    """A row of the App Store product catalog: a StoreKit productId and its credits."""

    product_id: str
    credits: int
    active: bool
    description: str | None = None


class DeviceClaim(_Frozen):
    """The user whose initial grant a device claimed (kept when that user is deleted)."""

    device_id: str
    first_user_id: UUID
    claimed_at: datetime


class DeviceCheckResult(_Frozen):
    """POST /device/check's answer: whether this call granted the initial credits."""

    granted: bool
    credits_remaining: int


class CreditRedemption(_Frozen):
    """POST /update-credits' answer. `already_processed`: the transaction was credited
    before (nothing added now); `credits_added` is what this call added."""

    transaction_id: str
    product_id: str
    credits_added: int
    credits_remaining: int
    already_processed: bool


class AppStoreNotificationResult(_Frozen):
    """apply_app_store_notification's answer. `outcome`: refunded, already_refunded,
    no_purchase (the transaction was never credited) or acknowledged (not a refund)."""

    already_processed: bool
    notification_type: str
    outcome: str
    user_id: UUID | None = None
    credits_removed: int = 0
    shortfall: int = 0
    credits_remaining: int | None = None


class JobFailure(_Frozen):
    """fail_video_job's answer; `failed` is false when the job was already final."""

    failed: bool
    status: JobStatus
    credits_refunded: int
    credits_remaining: int | None = None


class WorkerHeartbeat(_Frozen):
    """A generation worker's heartbeat row: where it runs and when it was last seen."""

    worker_id: str
    hostname: str
    pid: int
    concurrency: int
    in_flight: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None = None


class LedgerViolation(_Frozen):
    """One violated ledger invariant (verify_ledger)."""

    user_id: UUID | None = None
    invariant: str
    detail: str


class ArchiveReport(_Frozen):
    """What archiving did: jobs moved to the archive and their Storage files removed.

    Files are named `bucket/key` (`videos/{user_id}/{job_id}.mp4`). `files_missing`
    counts queued files Storage no longer had; `files_invalid` lists stored paths
    Storage cannot address (dropped from the queue, nothing to remove).
    """

    jobs_archived: int
    files_removed: list[str] = Field(default_factory=list)
    files_missing: int = 0
    files_invalid: list[str] = Field(default_factory=list)


class StrayFilesReport(_Frozen):
    """Stray files removed: stored at a finished job's paths, yet not the job's own.

    Files are named `bucket/key`; `files_missing` counts those Storage no longer had
    (another cleaner removed them first).
    """

    files_removed: list[str] = Field(default_factory=list)
    files_missing: int = 0


class UploadedObject(_Frozen):
    """Where an uploaded file lives in Storage."""

    bucket: str
    path: str


class BucketSpec(_Frozen):
    """The wanted settings of a Storage bucket."""

    id: str
    public: bool = False
    file_size_limit: int
    allowed_mime_types: tuple[str, ...]


class ProvisionItem(_Frozen):
    """What provisioning did to one bucket; `changes` maps setting -> [old, new]."""

    bucket: str
    action: ChangeAction
    changes: dict[str, list[Any]] = Field(default_factory=dict)


class _Report(_Frozen):
    items: list[Any]

    @property
    def changed(self) -> bool:
        """True if anything was created or updated."""
        return any(item.action is not ChangeAction.UNCHANGED for item in self.items)

    def count(self, action: ChangeAction) -> int:
        """How many items had `action`."""
        return sum(1 for item in self.items if item.action is action)

    def summary(self) -> str:
        """One line such as `created 0, updated 1, unchanged 2`."""
        return ", ".join(f"{action.value} {self.count(action)}" for action in ChangeAction)


class ProvisionReport(_Report):
    """Storage provisioning's report, one item per bucket."""

    items: list[ProvisionItem]


class SeedItem(_Frozen):
    """What seeding did to one catalog model; `changed_fields` lists updated columns."""

    model_id: UUID
    name: str
    action: ChangeAction
    changed_fields: list[str] = Field(default_factory=list)


class SeedReport(_Report):
    """Model catalog seeding's report, one item per catalog entry."""

    catalog_version: str
    items: list[SeedItem]
