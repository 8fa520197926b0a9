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

# The public names, listed once: the imports below. Type checkers read them (`X as X`
# marks an explicit re-export, which mypy --strict requires; without these imports every
# public name would be `Any` to a type checker). At run time they are not executed:
# `_locations()` reads this block from the source, and each name is imported on first use
# (PEP 562), so importing one submodule, e.g. the local stack's gateway, does not pull in
# every Supabase client and model. `__all__`, `__getattr__` and `__dir__` all follow
# from this block: to export a name, add its import here and nowhere else. (Reading the
# source needs the package's files on disk, as catalog/models.json already does.)
if TYPE_CHECKING:
    from ._core.idempotency import request_hash as request_hash
    from ._core.storage import BUCKETS as BUCKETS
    from .admin import AsyncRendioAdmin as AsyncRendioAdmin
    from .admin import RendioAdmin as RendioAdmin
    from .client import AsyncRendioClient as AsyncRendioClient
    from .client import RendioClient as RendioClient
    from .config import RendioConfig as RendioConfig
    from .errors import AuthError as AuthError
    from .errors import ConfigurationError as ConfigurationError
    from .errors import Conflict as Conflict
    from .errors import IdempotencyKeyInUse as IdempotencyKeyInUse
    from .errors import IdempotencyKeyReused as IdempotencyKeyReused
    from .errors import InsufficientCredits as InsufficientCredits
    from .errors import InvalidRequest as InvalidRequest
    from .errors import ModelUnavailable as ModelUnavailable
    from .errors import NotFound as NotFound
    from .errors import PermissionDenied as PermissionDenied
    from .errors import ProviderError as ProviderError
    from .errors import RateLimited as RateLimited
    from .errors import RendioConnectionError as RendioConnectionError
    from .errors import RendioError as RendioError
    from .errors import ServerError as ServerError
    from .errors import StorageError as StorageError
    from .errors import TransactionAlreadyUsed as TransactionAlreadyUsed
    from .models import AppStoreNotificationResult as AppStoreNotificationResult
    from .models import ArchiveReport as ArchiveReport
    from .models import AuthSession as AuthSession
    from .models import Balance as Balance
    from .models import BucketSpec as BucketSpec
    from .models import ChangeAction as ChangeAction
    from .models import CreditGrant as CreditGrant
    from .models import CreditReason as CreditReason
    from .models import CreditRedemption as CreditRedemption
    from .models import CreditTransaction as CreditTransaction
    from .models import Deduction as Deduction
    from .models import DeviceCheckResult as DeviceCheckResult
    from .models import DeviceClaim as DeviceClaim
    from .models import FailureReason as FailureReason
    from .models import IapProduct as IapProduct
    from .models import IapRefund as IapRefund
    from .models import JobCreated as JobCreated
    from .models import JobFailure as JobFailure
    from .models import JobStatus as JobStatus
    from .models import LedgerViolation as LedgerViolation
    from .models import Model as Model
    from .models import Page as Page
    from .models import ProvisionItem as ProvisionItem
    from .models import ProvisionReport as ProvisionReport
    from .models import SeedItem as SeedItem
    from .models import SeedReport as SeedReport
    from .models import StrayFilesReport as StrayFilesReport
    from .models import Theme as Theme
    from .models import Tier as Tier
    from .models import UploadedObject as UploadedObject
    from .models import User as User
    from .models import VideoJob as VideoJob
    from .models import VideoJobSummary as VideoJobSummary
    from .models import VideoStatus as VideoStatus
    from .models import WorkerHeartbeat as WorkerHeartbeat
    from .tokens import AccessClaims as AccessClaims
    from .tokens import TokenVerifier as TokenVerifier


def _locations() -> dict[str, str]:
    """{public name: module} as the TYPE_CHECKING block above imports them."""
    import ast

    with open(__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    return {alias.asname or alias.name: "." * statement.level + (statement.module or "")
            for statement in block.body if isinstance(statement, ast.ImportFrom)
            for alias in statement.names}


_LOCATIONS = _locations()
__all__ = sorted(_LOCATIONS)


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
