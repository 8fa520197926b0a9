"""The service-role facades: `RendioAdmin` (sync) and `AsyncRendioAdmin`.

They bypass row-level security with the service role key: for workers, the HTTP API,
scripts and the CLI, never for an app. Generated from one implementation
(rendio_backend/_async/admin.py).
"""

from __future__ import annotations

from ._async.admin import AsyncRendioAdmin
from ._sync.admin import RendioAdmin

__all__ = ["AsyncRendioAdmin", "RendioAdmin"]
