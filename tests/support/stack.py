"""Helpers for tests that run against a real local stack (the fixtures are in conftest)."""

from __future__ import annotations

import os
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

from rendio_backend.local._proc import free_port
from rendio_backend.local.config import StackConfig
from rendio_backend.local.stack import Stack
from rendio_backend.project import find_project

REPO = Path(__file__).resolve().parents[2]
# The repository is a project folder: its migrations are found like any project's.
MIGRATIONS = find_project(REPO).migrations_dir

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
