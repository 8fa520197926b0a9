"""Transactions under the caller's role, scoped like Supabase Storage.

Every statement runs in a transaction that first sets the same transaction-local settings
as Storage's `src/internal/database/postgres/scope.ts` (role, `request.jwt*`,
`request.headers`, `request.method`, `request.path`, `storage.operation`, and
`storage.allow_delete_query` which Storage also sets on every scope), so the RLS
policies on storage.buckets / storage.objects decide; `service_role` (BYPASSRLS) plays
Storage's "superuser". PostgreSQL errors leave here as `StorageApiError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from . import _errors as errors
from ._auth import Caller

_SCOPE_SQL = """
select set_config('role', %(role)s, true),
       set_config('request.jwt.claim.role', %(role)s, true),
       set_config('request.jwt', %(jwt)s, true),
       set_config('request.jwt.claim.sub', %(sub)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.headers', %(headers)s, true),
       set_config('request.method', %(method)s, true),
       set_config('request.path', %(path)s, true),
       set_config('storage.operation', %(operation)s, true),
       set_config('storage.allow_delete_query', 'true', true)
"""


@dataclass(frozen=True)
class RequestInfo:
    """What the scope records about the HTTP request."""

    method: str
    path: str
    operation: str
    headers: dict[str, str]


class Tx:
    """A transaction whose scope can switch between the caller and `service_role`."""

    def __init__(self, cur: psycopg.AsyncCursor[DictRow], caller: Caller,
                 request: RequestInfo) -> None:
        self.cur = cur
        self.caller = caller
        self.request = request

    async def scope(self, caller: Caller) -> None:
        """Run what follows as `caller` (Storage's `setScope` / `asSuperUser`)."""
        await self.cur.execute(_SCOPE_SQL, {
            "role": caller.role,
            "jwt": caller.token,
            "sub": caller.sub or "",
            "claims": caller.claims_json,
            "headers": json.dumps(self.request.headers, separators=(",", ":")),
            "method": self.request.method,
            "path": self.request.path,
            "operation": self.request.operation,
        })

    async def all(self, query: str, params: dict[str, Any] | None = None) -> list[DictRow]:
        await self.cur.execute(query, params)
        if self.cur.description is None:
            return []
        return await self.cur.fetchall()

    async def one(self, query: str, params: dict[str, Any] | None = None) -> DictRow | None:
        rows = await self.all(query, params)
        return rows[0] if rows else None

    async def lock_object(self, bucket: str, name: str) -> None:
        """Serialise writers of one key (Storage's `waitObjectLock`), so the version we
        replace is the one we read."""
        await self.cur.execute(
            "select pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"storage.objects:{bucket}/{name}",))


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool[Any], caller: Caller,
                      request: RequestInfo) -> AsyncIterator[Tx]:
    """One transaction scoped as `caller`; commits when the block ends without error."""
    try:
        async with pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                tx = Tx(cur, caller, request)
                await tx.scope(caller)
                yield tx
    except psycopg.Error as exc:
        raise errors.from_pg_error(exc) from exc


class _Rollback(Exception):
    pass


async def test_permission(pool: AsyncConnectionPool[Any], caller: Caller,
                          request: RequestInfo, query: str, params: dict[str, Any]) -> None:
    """Run a write as `caller` and roll it back: does RLS allow it? (Storage's
    `testPermission`.)"""
    try:
        async with transaction(pool, caller, request) as tx:
            await tx.all(query, params)
            raise _Rollback
    except _Rollback:
        return
