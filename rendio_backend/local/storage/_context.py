"""What every Storage endpoint shares: the configuration, the connection pool, the files
on disk, and how a request becomes a caller and a scoped transaction."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request

from .._http import service_path
from ..config import StackConfig
from ._auth import Caller, authenticate
from ._db import RequestInfo, Tx, transaction
from ._files import FileStore


class StorageContext:
    """The state Storage's endpoints share; `open()` before serving, `close()` after."""

    def __init__(self, config: StackConfig, *, file_size_limit: int,
                 pool_max_size: int) -> None:
        self.config = config
        self.keys = config.jwt_keys
        self.file_size_limit = file_size_limit
        self.files = FileStore(config.storage_dir)
        self._pool_max_size = pool_max_size
        self._pool: AsyncConnectionPool[Any] | None = None

    async def open(self) -> None:
        """Create the storage directory and open the pool (as supabase_storage_admin)."""
        await anyio.to_thread.run_sync(self.files.prepare)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.config.role_db_url("supabase_storage_admin"), min_size=1,
            max_size=self._pool_max_size, open=False, kwargs={"autocommit": True},
            name="rendio-storage",
            # A connection dropped by a database reset or restart is replaced, not used.
            check=AsyncConnectionPool.check_connection)
        await pool.open(wait=True, timeout=30)
        self._pool = pool

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            raise RuntimeError("the storage service is not started")
        return self._pool

    def caller(self, request: Request, *, optional: bool = False) -> Caller:
        return authenticate(request.headers.get("authorization"), self.keys,
                            optional=optional)

    def transaction(self, caller: Caller, request: Request,
                    operation: str) -> AbstractAsyncContextManager[Tx]:
        """One transaction for `request`'s `operation`, scoped as `caller` (see `_db`)."""
        return transaction(self.pool, caller, request_info(request, operation))


def request_info(request: Request, operation: str) -> RequestInfo:
    """What the transaction scope records about `request` (path as Storage sees it)."""
    path = service_path(request)
    if request.url.query:
        path = f"{path}?{request.url.query}"
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    return RequestInfo(method=request.method, path=path, operation=operation,
                       headers=headers)
