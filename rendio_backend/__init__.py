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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Public names load on first use (PEP 562), so importing one submodule, e.g. the local
# stack's gateway, does not pull in every Supabase client and model.
_LOCATIONS = {
    "AsyncRendioAdmin": ".admin",
    "AsyncRendioClient": ".client",
    "AuthError": ".errors",
    "AuthSession": ".models",
    "BUCKETS": "._shared",
    "Balance": ".models",
    "BucketSpec": ".models",
    "ChangeAction": ".models",
    "ConfigurationError": ".errors",
    "Conflict": ".errors",
    "CreditGrant": ".models",
    "CreditReason": ".models",
    "CreditTransaction": ".models",
    "Deduction": ".models",
    "IapRefund": ".models",
    "IdempotencyConflict": ".errors",
    "IdempotencyKeyReused": ".errors",
    "InsufficientCredits": ".errors",
    "JobCreated": ".models",
    "JobFailure": ".models",
    "JobStatus": ".models",
    "LedgerViolation": ".models",
    "Model": ".models",
    "ModelUnavailable": ".errors",
    "NotFound": ".errors",
    "Page": ".models",
    "PermissionDenied": ".errors",
    "ProviderError": ".errors",
    "ProvisionItem": ".models",
    "ProvisionReport": ".models",
    "RateLimited": ".errors",
    "RendioAdmin": ".admin",
    "RendioClient": ".client",
    "RendioConfig": ".config",
    "RendioConnectionError": ".errors",
    "RendioError": ".errors",
    "SeedItem": ".models",
    "SeedReport": ".models",
    "ServerError": ".errors",
    "StorageError": ".errors",
    "Theme": ".models",
    "Tier": ".models",
    "TransactionAlreadyUsed": ".errors",
    "UploadedObject": ".models",
    "User": ".models",
    "ValidationError": ".errors",
    "VideoJob": ".models",
    "request_hash": "._shared",
}

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


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
