"""Fixtures of the database tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.stack import RunningStack


@pytest.fixture
def call(stack: RunningStack) -> Iterator[Any]:
    """Call a public function as service_role: `call("fn", *args) -> value`."""
    with psycopg.connect(stack.config.superuser_db_url, autocommit=True) as conn:
        conn.execute("set role service_role")

        def run(function: str, *args: Any) -> Any:
            placeholders = ", ".join(["%s"] * len(args))
            row = conn.execute(f"select public.{function}({placeholders})", args).fetchone()
            assert row is not None
            return row[0]

        yield run
