"""Rendio's backend library: typed, user-scoped and admin facades over Supabase.

    from rendio_backend import RendioClient

    with RendioClient() as client:          # configured from the environment / .env
        client.sign_in_anonymously()
        print(client.list_models(), client.get_balance())

`RendioClient` / `AsyncRendioClient` act as one app user (RLS applies);
`RendioAdmin` / `AsyncRendioAdmin` use the service role. Everything public is
exported here; modules whose names start with `_` are private.
"""

from __future__ import annotations

from ._shared import BUCKETS, request_hash
from .admin import AsyncRendioAdmin, RendioAdmin
from .client import AsyncRendioClient, RendioClient
from .config import RendioConfig
from .errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InsufficientCredits,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RendioConnectionError,
    RendioError,
    ServerError,
    StorageError,
    TransactionAlreadyUsed,
    ValidationError,
)
from .models import (
    AuthSession,
    Balance,
    BucketSpec,
    ChangeAction,
    CreditGrant,
    CreditReason,
    CreditTransaction,
    Deduction,
    IapRefund,
    JobCreated,
    JobFailure,
    JobStatus,
    LedgerViolation,
    Model,
    Page,
    ProvisionItem,
    ProvisionReport,
    SeedItem,
    SeedReport,
    Theme,
    Tier,
    UploadedObject,
    User,
    VideoJob,
)

__all__ = [
    "AsyncRendioAdmin",
    "AsyncRendioClient",
    "AuthError",
    "AuthSession",
    "BUCKETS",
    "Balance",
    "BucketSpec",
    "ChangeAction",
    "ConfigurationError",
    "Conflict",
    "CreditGrant",
    "CreditReason",
    "CreditTransaction",
    "Deduction",
    "IapRefund",
    "IdempotencyConflict",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "JobCreated",
    "JobFailure",
    "JobStatus",
    "LedgerViolation",
    "Model",
    "ModelUnavailable",
    "NotFound",
    "Page",
    "PermissionDenied",
    "ProviderError",
    "ProvisionItem",
    "ProvisionReport",
    "RateLimited",
    "RendioAdmin",
    "RendioClient",
    "RendioConfig",
    "RendioConnectionError",
    "RendioError",
    "SeedItem",
    "SeedReport",
    "ServerError",
    "StorageError",
    "Theme",
    "Tier",
    "TransactionAlreadyUsed",
    "UploadedObject",
    "User",
    "ValidationError",
    "VideoJob",
    "request_hash",
]
