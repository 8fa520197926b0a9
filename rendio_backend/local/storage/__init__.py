"""The local Storage service: a Supabase Storage API-compatible subset.

Mounted by the gateway at `/storage/v1`. Object bytes live under `StackConfig.storage_dir`;
metadata and every authorization decision live in PostgreSQL (storage.buckets /
storage.objects and their RLS policies), reached as `supabase_storage_admin` with each
request's statements run under the caller's role.
"""

from __future__ import annotations

from ..config import StackConfig
from ._errors import StorageApiError
from ._service import StorageService

__all__ = ["StorageApiError", "StorageService", "create_storage_service"]


def create_storage_service(config: StackConfig) -> StorageService:
    """The Storage service for `config`; call `startup()` before serving, `shutdown()` after."""
    return StorageService(config)
