"""Storage RLS on storage.objects: own folder only; users write only to user_uploads.

Checked in SQL as the `authenticated` role with PostgREST-style JWT claims (what the
Storage service does per request), inside a transaction that is rolled back: objects
are never deleted by SQL outside the Storage service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.stack import RunningStack

BUCKETS = ("videos", "thumbnails", "user_uploads")


@pytest.fixture
def tx(stack: RunningStack) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection in a transaction that is always rolled back."""
    with psycopg.connect(stack.config.superuser_db_url) as conn:
        for bucket in BUCKETS:
            conn.execute("insert into storage.buckets (id, name) values (%s, %s) "
                         "on conflict (id) do nothing", (bucket, bucket))
        try:
            yield conn
        finally:
            conn.rollback()


def as_user(conn: psycopg.Connection[Any], user: str) -> None:
    conn.execute("select set_config('role', 'authenticated', true), "
                 "set_config('request.jwt.claims', %s, true)",
                 (json.dumps({"sub": user, "role": "authenticated"}),))


def as_admin(conn: psycopg.Connection[Any]) -> None:
    conn.execute("reset role")


def put(conn: psycopg.Connection[Any], bucket: str, name: str) -> bool:
    """Insert an object; False if RLS refused it."""
    conn.execute("savepoint put")
    try:
        conn.execute("insert into storage.objects (bucket_id, name) values (%s, %s)",
                     (bucket, name))
    except psycopg.errors.InsufficientPrivilege:
        conn.execute("rollback to savepoint put")
        return False
    conn.execute("release savepoint put")
    return True


def visible(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    rows = conn.execute("select bucket_id, name from storage.objects").fetchall()
    return {(r[0], r[1]) for r in rows}


def test_users_write_only_own_uploads(tx: psycopg.Connection[Any]) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    as_user(tx, alice)
    assert put(tx, "user_uploads", f"{alice}/image.png")
    assert not put(tx, "user_uploads", f"{bob}/image.png")
    assert not put(tx, "user_uploads", "image.png")
    assert not put(tx, "videos", f"{alice}/{uuid.uuid4()}.mp4")
    assert not put(tx, "thumbnails", f"{alice}/{uuid.uuid4()}.jpg")


def test_users_read_only_own_objects(tx: psycopg.Connection[Any]) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    job = uuid.uuid4()
    as_admin(tx)  # the service role's writes, as the Storage service does them
    for owner in (alice, bob):
        put(tx, "videos", f"{owner}/{job}.mp4")
        put(tx, "thumbnails", f"{owner}/{job}.jpg")
        put(tx, "user_uploads", f"{owner}/in.png")
    as_user(tx, alice)
    assert visible(tx) == {("videos", f"{alice}/{job}.mp4"), ("thumbnails", f"{alice}/{job}.jpg"),
                           ("user_uploads", f"{alice}/in.png")}


def test_users_update_only_own_uploads(tx: psycopg.Connection[Any]) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    as_admin(tx)
    put(tx, "user_uploads", f"{alice}/a.png")
    put(tx, "videos", f"{alice}/v.mp4")
    put(tx, "user_uploads", f"{bob}/b.png")
    as_user(tx, alice)
    moved = tx.execute("update storage.objects set metadata = '{}'::jsonb "
                       "returning bucket_id, name").fetchall()
    assert moved == [("user_uploads", f"{alice}/a.png")]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # WITH CHECK: stays own
        tx.execute("update storage.objects set name = %s where name = %s",
                   (f"{bob}/stolen.png", f"{alice}/a.png"))


def test_users_delete_only_own_uploads(tx: psycopg.Connection[Any]) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    as_admin(tx)
    for name in (f"{alice}/a.png", f"{bob}/b.png"):
        put(tx, "user_uploads", name)
    put(tx, "videos", f"{alice}/v.mp4")
    as_user(tx, alice)
    # The flag the Storage service sets for its own deletes (SQL deletes are refused).
    tx.execute("select set_config('storage.allow_delete_query', 'true', true)")
    deleted = tx.execute("delete from storage.objects returning bucket_id, name").fetchall()
    assert deleted == [("user_uploads", f"{alice}/a.png")]
