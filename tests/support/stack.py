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

from rendio_backend.config import RendioConfig
from rendio_backend.local._proc import free_port
from rendio_backend.local.auth_settings import AuthSettings, RateLimits
from rendio_backend.local.config import StackConfig
from rendio_backend.local.stack import Stack
from rendio_backend.project import find_project

REPO = Path(__file__).resolve().parents[2]
# The repository is a project folder: its migrations are found like any project's.
MIGRATIONS = find_project(REPO).migrations_dir

SqlRunner = Callable[..., list[tuple[Any, ...]]]


# The suite signs in hundreds of times from one address and has no mailbox: the session
# stack keeps the Supabase CLI's `enable_confirmations = false`, turns anonymous sign-ins
# on (as Rendio's config.toml does) and raises the rate limits. test_wire checks a new
# hosted project's defaults on a gateway of their own (`serve_gateway`).
SUITE_AUTH = AuthSettings(
    enable_anonymous_sign_ins=True, enable_confirmations=False, max_frequency=1,
    rate_limits=RateLimits(anonymous_users=1_000_000, sign_in_sign_ups=1_000_000,
                           token_refresh=1_000_000, token_verifications=1_000_000))


# RENDIO_TEST_KEYS=legacy runs tests as a project that has not migrated: HS256 user tokens
# (RENDIO_JWT_ALG=HS256) and the anon / service_role JWTs as the clients' keys.
LEGACY_KEYS = os.environ.get("RENDIO_TEST_KEYS", "new") == "legacy"
if os.environ.get("RENDIO_TEST_KEYS", "new") not in ("new", "legacy"):
    raise RuntimeError("RENDIO_TEST_KEYS must be `new` (the default) or `legacy`")


def publishable_key(config: StackConfig) -> str:
    """The key an app ships: `sb_publishable_…`, or the anon JWT in legacy mode."""
    return config.anon_key if LEGACY_KEYS else config.publishable_key


def secret_key(config: StackConfig) -> str:
    """The server's key: `sb_secret_…`, or the service_role JWT in legacy mode."""
    return config.service_role_key if LEGACY_KEYS else config.secret_key


def make_config(state_dir: Path, **changes: Any) -> StackConfig:
    """A stack configuration on free ports that ignores the developer's RENDIO_* settings."""
    pg_bin = os.environ.get("RENDIO_PG_BIN")
    return StackConfig(**{
        "state_dir": state_dir,
        "api_port": free_port(),
        "db_port": free_port(),
        "pg_bin_dir": Path(pg_bin) if pg_bin else None,
        "auth": SUITE_AUTH,
        "jwt_alg": "HS256" if LEGACY_KEYS else "ES256",
        # Tests start the workers they need (tests/generation), with their own pacing.
        "run_worker": False,
        **changes,
    })


@dataclass
class RunningStack:
    stack: Stack
    config: StackConfig

    def rest_url(self) -> str:
        return f"{self.config.api_url}/rest/v1"

    @property
    def publishable_key(self) -> str:
        return publishable_key(self.config)

    @property
    def secret_key(self) -> str:
        return secret_key(self.config)

    def rendio_config(self) -> RendioConfig:
        """The library's settings for this stack, with the keys of the mode under test."""
        return RendioConfig(supabase_url=self.config.api_url, anon_key=self.publishable_key,
                            service_role_key=self.secret_key)

    def user_jwt(self, sub: str, *, role: str = "authenticated", expires_in: int = 3600,
                 secret: str | None = None, alg: str = "HS256", **claims: Any) -> str:
        """An access token shaped like GoTrue's: HS256 with the stack's secret (which
        every service still accepts), or ES256 with its signing key and `kid` as Auth
        signs them (not in legacy mode)."""
        now = int(time.time())
        payload = {"iss": self.config.auth_url, "sub": sub, "role": role,
                   "aud": "authenticated", "iat": now, "exp": now + expires_in, **claims}
        if alg == "ES256":
            signing = self.config.jwt_keys.signing
            assert signing is not None, "the stack signs HS256 only (legacy mode)"
            return signing.sign(payload)
        return jwt.encode(payload, secret or self.config.jwt_secret, algorithm=alg)

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
