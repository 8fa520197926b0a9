"""Shared fixtures: one real local stack per test session, isolated from a developer's.

The stack runs in a temporary directory on free ports, with the bootstrap SQL and
`supabase/migrations` applied, exactly as `rendio dev up` runs it. Set RENDIO_PG_BIN to
run the suite on another PostgreSQL build (CI also runs the database tests on Debian's
PostgreSQL 15).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from rendio_backend.local._proc import free_port
from rendio_backend.local.config import StackConfig
from rendio_backend.local.stack import Stack

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "supabase" / "migrations"

SqlRunner = Callable[..., list[tuple[Any, ...]]]


def make_config(state_dir: Path, **changes: Any) -> StackConfig:
    """A stack configuration on free ports that ignores the developer's RENDIO_* settings."""
    pg_bin = os.environ.get("RENDIO_PG_BIN")
    return StackConfig(
        state_dir=state_dir,
        api_port=free_port(),
        db_port=free_port(),
        pg_bin_dir=Path(pg_bin) if pg_bin else None,
        **changes,
    )


@dataclass
class RunningStack:
    stack: Stack
    config: StackConfig

    def rest_url(self) -> str:
        return f"{self.config.api_url}/rest/v1"

    def user_jwt(self, sub: str, *, role: str = "authenticated", expires_in: int = 3600,
                 secret: str | None = None, **claims: Any) -> str:
        """An access token shaped like GoTrue's, signed with the stack's secret."""
        now = int(time.time())
        payload = {"sub": sub, "role": role, "aud": "authenticated", "iat": now,
                   "exp": now + expires_in, **claims}
        return jwt.encode(payload, secret or self.config.jwt_secret, algorithm="HS256")

    def reload_schema(self, probe: str, timeout: float = 10.0) -> None:
        """NOTIFY PostgREST and wait until `probe` (a path under /rest/v1) is known."""
        with psycopg.connect(self.config.superuser_db_url, autocommit=True) as conn:
            conn.execute("notify pgrst, 'reload schema'")
        deadline = time.monotonic() + timeout
        headers = {"apikey": self.config.service_role_key,
                   "Authorization": f"Bearer {self.config.service_role_key}"}
        while time.monotonic() < deadline:
            response = httpx.get(self.rest_url() + probe, headers=headers)
            if response.status_code != 404:
                return
            time.sleep(0.05)
        raise AssertionError(f"PostgREST did not learn {probe} within {timeout} s")


def stack_dir(name: str) -> Path:
    """A directory for a test stack's state.

    Not under pytest's basetemp: pytest deletes old basetemps when a new session starts,
    which would pull the data directory from under a stack another session still runs.
    """
    return Path(tempfile.mkdtemp(prefix=f"rendio-test-{name}-"))


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    state_dir = stack_dir("session")
    config = make_config(state_dir)
    local = Stack(config)
    try:
        local.up(migrations_dir=MIGRATIONS)
        yield RunningStack(local, config)
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def sql(stack: RunningStack) -> Iterator[SqlRunner]:
    """Run SQL as the superuser (autocommit): `sql(query, *params) -> rows`."""
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:

        def run(query: str, *params: Any) -> list[tuple[Any, ...]]:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

        yield run


@dataclass
class ScratchDb:
    """A database of its own on the session stack's server, bootstrapped like the stack's."""

    name: str
    url: str  # as postgres
    superuser_url: str

    def query(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            cur = conn.execute(query.encode(), params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture
def db(stack: RunningStack) -> Iterator[ScratchDb]:
    """A fresh bootstrapped scratch database (migrated by the test itself), then dropped."""
    from psycopg import sql as pgsql

    from rendio_backend.dbtools.bootstrap import bootstrap
    from rendio_backend.dbtools.connection import with_database

    name = f"rendio_test_{secrets.token_hex(4)}"
    superuser = stack.config.superuser_db_url
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(pgsql.SQL("create database {}").format(pgsql.Identifier(name)))
    scratch_super = with_database(superuser, name)
    bootstrap(scratch_super)
    try:
        yield ScratchDb(name, with_database(stack.config.db_url, name), scratch_super)
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(pgsql.SQL("drop database if exists {} with (force)").format(
                pgsql.Identifier(name)))


@contextmanager
def own_folder_policies(config: StackConfig, bucket: str) -> Iterator[None]:
    """Storage policies letting a user use only `{their uid}/...` in `bucket`."""
    rule = f"bucket_id = '{bucket}' and (storage.foldername(name))[1] = auth.uid()::text"
    clauses = {"select": f"using ({rule})", "insert": f"with check ({rule})",
               "update": f"using ({rule}) with check ({rule})", "delete": f"using ({rule})"}
    with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
        for action, clause in clauses.items():
            conn.execute(f'create policy "{bucket} {action}" on storage.objects '
                         f"for {action} to authenticated {clause}".encode())
    try:
        yield
    finally:
        with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
            for action in clauses:
                conn.execute(f'drop policy if exists "{bucket} {action}" on storage.objects'
                             .encode())
