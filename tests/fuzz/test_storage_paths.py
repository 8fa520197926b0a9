"""Hypothesis on Storage object names through the official client (supabase-py's
storage3), as a signed-in user uploading to `user_uploads`: `..`, absolute paths,
URL-encoding tricks, backslashes, NUL and over-long names.

Each upload either lands inside the user's own folder or is refused with a clear 4xx
(or refused by the client before it is sent); no object is ever created outside it,
in the database or on disk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from storage3.exceptions import StorageApiError
from supabase import ClientOptions, create_client

from tests.fuzz.conftest import User, fuzz_settings
from tests.support.stack import RunningStack, SqlRunner

BUCKET = "user_uploads"
PNG = b"\x89PNG\r\n\x1a\n fuzz"
OTHER = str(uuid.uuid4())

TRICKS = ["..", ".", "%2e%2e", "%2E%2E%2F", "..%2f", "%252e%252e", "..\\", "\\..\\",
          "/", "//", "%2F", "%00", "\x00", "~", "?x=1", "#frag", " ", "\u202e", "ä",
          "\U0001f3a5", "%", "%zz", "\n", "\t", "*", ":", "'", '"', "<", ">"]


def _names(user_id: str) -> st.SearchStrategy[str]:
    segment = st.one_of(st.sampled_from(TRICKS), st.text(min_size=1, max_size=12),
                        st.sampled_from([user_id, OTHER, "x" * 300, "y" * 1100]))
    tail = st.lists(segment, min_size=1, max_size=5).map("/".join)
    return st.one_of(
        tail.map(lambda t: f"{user_id}/{t}"),           # inside, then trying to climb
        tail,                                              # no folder, or someone else's
        tail.map(lambda t: f"/{t}"),                       # absolute
        tail.map(lambda t: f"{user_id}%2F{t}"),             # an encoded separator
        tail.map(lambda t: f"../{user_id}/{t}"),
        st.just(f"{user_id}/" + "n" * 2000 + ".png"),       # over-long
    )


def _outside(sql: SqlRunner, user_id: str) -> set[tuple[str, str]]:
    rows = sql("select bucket_id, name from storage.objects"
               " where coalesce(owner_id, owner::text) = %s"
               "   and (bucket_id <> %s or (storage.foldername(name))[1] is distinct from %s)",
               user_id, BUCKET, user_id)
    return {(str(b), str(n)) for b, n in rows}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def storage(stack: RunningStack, user: User) -> Iterator[Any]:
    client = create_client(stack.config.api_url, stack.publishable_key, options=ClientOptions(
        headers={"Authorization": f"Bearer {user.token}"}, auto_refresh_token=False))
    yield client.storage.from_(BUCKET)


def test_object_names_never_leave_the_users_folder(
    stack: RunningStack, user: User, storage: Any, sql: SqlRunner
) -> None:
    root = stack.config.storage_dir
    files_before = _files(root)
    assert _outside(sql, user.user_id) == set()
    landed: list[str] = []
    wire = httpx.Client(base_url=f"{stack.config.api_url}/storage/v1", timeout=30, headers={
        "apikey": stack.publishable_key, "Authorization": f"Bearer {user.token}"})

    @fuzz_settings(scale=4)
    @given(name=_names(user.user_id))
    @example(name=f"{user.user_id}/plain.png")  # a name that must land, every run
    def run(name: str) -> None:
        try:
            storage.upload(name, PNG, {"content-type": "image/png", "upsert": "true"})
        except StorageApiError as exc:
            status = int(exc.status)
            assert 400 <= status < 500, (name, exc)
            assert exc.message, (name, exc)
        except ValueError as exc:  # storage3 refuses dot segments before sending
            assert "dot segments" in str(exc), (name, exc)
        else:
            landed.append(name)
        assert _outside(sql, user.user_id) == set(), name
        # The same name on the wire, as a client without storage3's check would send it
        # (every character escaped, so nothing normalizes the dot segments away).
        raw = wire.post(f"/object/{BUCKET}/{quote(name, safe='')}", content=PNG,
                        headers={"Content-Type": "image/png", "x-upsert": "true"})
        assert raw.status_code < 500, (name, raw.text)
        if raw.status_code >= 400:
            assert raw.json().get("message"), (name, raw.text)
        assert _outside(sql, user.user_id) == set(), (name, raw.text)

    with wire:
        run()
    assert f"{user.user_id}/plain.png" in landed  # the accepted path was exercised
    # What was written sits under the storage root, in the user's folder of the bucket.
    written = _files(root) - files_before
    inside = root.resolve()
    for path in written:
        assert path.resolve().is_relative_to(inside), path
    rows = sql("select name from storage.objects where bucket_id = %s"
               " and (storage.foldername(name))[1] = %s", BUCKET, user.user_id)
    assert len(rows) <= len(written)
