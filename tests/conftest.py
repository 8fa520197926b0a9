"""Shared fixtures: one real local stack per test session, isolated from a developer's.

The stack runs in a temporary directory on free ports, with the bootstrap SQL and
`supabase/migrations` applied, exactly as `rendio dev up` runs it. Set RENDIO_PG_BIN to
run the suite on another PostgreSQL build (CI also runs the database tests on Debian's
PostgreSQL 15), and RENDIO_TEST_KEYS=legacy to run it as a project still on the legacy
keys (HS256 user tokens, the anon / service_role JWTs as API keys; `make test-legacy-keys`).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rendio_backend.local.stack import Stack
from tests.support.stack import (
    MIGRATIONS,
    RunningStack,
    ScratchDb,
    SqlRunner,
    make_config,
    stack_dir,
)

UNIT_TESTS = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/unit are pure (no stack): `pytest -m unit` runs them alone."""
    for item in items:
        if UNIT_TESTS in item.path.parents:
            item.add_marker(pytest.mark.unit)


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


