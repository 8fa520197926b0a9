"""The user-scoped facades: `RendioClient` (sync) and `AsyncRendioClient`.

Both act as one app user through their own session, so row-level security decides
what they can read and change. They are generated from one implementation
(rendio_backend/_async/client.py).
"""

from __future__ import annotations

from ._async.client import AsyncRendioClient
from ._sync.client import RendioClient

__all__ = ["AsyncRendioClient", "RendioClient"]
