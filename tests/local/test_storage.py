"""The local Storage service through the official client (storage3 via `supabase`).

Authorization comes from RLS: each test bucket gets "own folder" policies on
storage.objects (`(storage.foldername(name))[1] = auth.uid()::text`), created here as
superuser, and users A and B must be kept apart by them alone.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from rendio_backend.local.storage._files import FileStore
from tests.support.stack import own_folder_policies, publishable_key, secret_key

# --- helpers ----------------------------------------------------------------------------


def _client(url: str, key: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return create_client(url, key, options=ClientOptions(headers=headers))


def _mint(secret: str, sub: str) -> str:
    """An access token shaped like GoTrue's (used when the auth service is not up)."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": "authenticated", "aud": "authenticated",
                       "iat": now, "exp": now + 3600, "email": f"{sub}@example.com",
                       "is_anonymous": False, "aal": "aal1"}, secret, algorithm="HS256")


def _new_user(config: Any, admin: Client) -> tuple[str, str]:
    """(user id, access token): a real user via the auth admin API when the auth service
    answers, else a minted token for a fresh uuid (the storage service accepts both)."""
    email, password = f"st-{uuid.uuid4().hex[:10]}@example.com", "pw-" + uuid.uuid4().hex
    try:
        created = admin.auth.admin.create_user(
            {"email": email, "password": password, "email_confirm": True})
        anon = create_client(config.api_url, publishable_key(config))
        session = anon.auth.sign_in_with_password({"email": email, "password": password})
        assert session.session is not None
        return created.user.id, session.session.access_token
    except Exception:
        sub = str(uuid.uuid4())
        return sub, _mint(config.jwt_secret, sub)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _storage_error(excinfo: pytest.ExceptionInfo[StorageApiError]) -> tuple[str, str]:
    return str(excinfo.value.status), excinfo.value.code


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config(stack: Any) -> Any:
    return stack.config


@pytest.fixture(scope="module")
def admin(config: Any) -> Client:
    return _client(config.api_url, secret_key(config))


@pytest.fixture(scope="module")
def users(config: Any, admin: Client) -> dict[str, tuple[str, str]]:
    return {"a": _new_user(config, admin), "b": _new_user(config, admin)}


@pytest.fixture(scope="module")
def user_a(config: Any, users: dict[str, tuple[str, str]]) -> tuple[str, Client]:
    uid, token = users["a"]
    return uid, _client(config.api_url, publishable_key(config), token)


@pytest.fixture(scope="module")
def user_b(config: Any, users: dict[str, tuple[str, str]]) -> tuple[str, Client]:
    uid, token = users["b"]
    return uid, _client(config.api_url, publishable_key(config), token)


@pytest.fixture(scope="module")
def bucket(config: Any, admin: Client) -> Iterator[str]:
    """A private bucket (1 KiB limit, text/* and image/png) with "own folder" policies."""
    name = f"rls-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(name, options={
        "public": False, "file_size_limit": 1024,
        "allowed_mime_types": ["text/*", "image/png"]})
    with own_folder_policies(config, name):
        yield name
    admin.storage.empty_bucket(name)
    admin.storage.delete_bucket(name)


# --- buckets ----------------------------------------------------------------------------


def test_service_role_bucket_lifecycle(config: Any, admin: Client) -> None:
    name = f"crud-{uuid.uuid4().hex[:8]}"
    sized: Any = {"file_size_limit": "1KB"}  # Storage also takes "20MB"-style sizes
    assert admin.storage.create_bucket(name, options=sized) == {"name": name}
    got = admin.storage.get_bucket(name)
    assert (got.id, got.name, got.owner, got.public, got.file_size_limit) == (
        name, name, "", False, 1000)
    assert name in {b.id for b in admin.storage.list_buckets()}

    with pytest.raises(StorageApiError) as dup:
        admin.storage.create_bucket(name)
    assert _storage_error(dup) == ("409", "Duplicate")

    admin.storage.update_bucket(name, {"public": True, "allowed_mime_types": ["image/*"]})
    got = admin.storage.get_bucket(name)
    assert got.public is True and got.allowed_mime_types == ["image/*"]

    admin.storage.from_(name).upload("x.png", b"png", {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as not_empty:
        admin.storage.delete_bucket(name)
    assert _storage_error(not_empty) == ("409", "ResourceNotEmpty")

    admin.storage.empty_bucket(name)
    assert admin.storage.from_(name).list() == []
    assert admin.storage.delete_bucket(name) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as gone:
        admin.storage.get_bucket(name)
    assert _storage_error(gone) == ("404", "Bucket not found")


def test_users_cannot_administer_buckets(bucket: str, user_a: tuple[str, Client]) -> None:
    _, client = user_a
    with pytest.raises(StorageApiError) as denied:
        client.storage.create_bucket(f"mine-{uuid.uuid4().hex[:6]}")
    assert _storage_error(denied) == ("403", "Unauthorized")
    assert denied.value.message == "new row violates row-level security policy"
    # No policy on storage.buckets: users see no bucket, so they can neither read nor
    # change nor delete one.
    assert client.storage.list_buckets() == []
    for call in (lambda: client.storage.get_bucket(bucket),
                 lambda: client.storage.update_bucket(bucket, {"public": True}),
                 lambda: client.storage.delete_bucket(bucket)):
        with pytest.raises(StorageApiError) as err:
            call()
        assert str(err.value.status) in ("404", "409")


def test_wire_errors(config: Any) -> None:
    base = f"{config.api_url}/storage/v1"
    missing = httpx.get(f"{base}/bucket")
    assert missing.status_code == 400
    assert missing.json()["statusCode"] == "400"
    bad = httpx.get(f"{base}/bucket", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 400
    assert bad.json() == {"statusCode": "403", "code": "AccessDenied", "error": "Unauthorized",
                          "message": "Invalid Compact JWS"}


# --- objects: the owner ------------------------------------------------------------------


def test_owner_upload_list_download_info_sign(config: Any, bucket: str,
                                              user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    files = client.storage.from_(bucket)
    result = files.upload(f"{uid}/hello.txt", b"hello rendio",
                          {"content-type": "text/plain", "cache-control": "60"})
    assert result.path == f"{uid}/hello.txt"

    listed = files.list(uid)
    assert [entry["name"] for entry in listed] == ["hello.txt"]
    assert listed[0]["metadata"]["size"] == 12
    assert listed[0]["metadata"]["mimetype"] == "text/plain"
    assert listed[0]["metadata"]["cacheControl"] == "max-age=60"
    assert files.list() == [{"name": uid, "id": None, "updated_at": None, "created_at": None,
                             "last_accessed_at": None, "metadata": None}]

    assert files.download(f"{uid}/hello.txt") == b"hello rendio"
    info = files.info(f"{uid}/hello.txt")
    assert (info["name"], info["size"], info["content_type"]) == (
        f"{uid}/hello.txt", 12, "text/plain")
    assert files.exists(f"{uid}/hello.txt") and not files.exists(f"{uid}/nope.txt")

    signed = files.create_signed_url(f"{uid}/hello.txt", 60)["signedURL"]
    assert signed is not None
    fetched = httpx.get(signed)  # no apikey, no session
    assert fetched.status_code == 200 and fetched.content == b"hello rendio"
    assert fetched.headers["content-type"] == "text/plain"

    many = files.create_signed_urls([f"{uid}/hello.txt", f"{uid}/missing.txt"], 60)
    first = many[0]["signedURL"]
    assert first is not None and httpx.get(first).content == b"hello rendio"
    assert many[1]["signedURL"] is None and many[1]["error"]

    tampered = signed.replace("hello.txt", "other.txt")
    bad = httpx.get(tampered)
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidSignature"


def test_upsert_semantics(config: Any, bucket: str, user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    files = client.storage.from_(bucket)
    path = f"{uid}/upsert.txt"
    files.upload(path, b"v1")
    with pytest.raises(StorageApiError) as dup:
        files.upload(path, b"v2")
    assert _storage_error(dup) == ("409", "Duplicate")
    files.upload(path, b"v2", {"upsert": "true"})
    assert files.download(path) == b"v2"
    files.update(path, b"v3")
    assert files.download(path) == b"v3"
    # Only the current version's bytes remain on disk.
    versions = [p for p in _files_under(config.storage_dir / bucket / uid / "upsert.txt")]
    assert len(versions) == 1 and versions[0].read_bytes() == b"v3"


def test_limits_are_enforced(bucket: str, user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    files = client.storage.from_(bucket)
    with pytest.raises(StorageApiError) as too_big:
        files.upload(f"{uid}/big.txt", b"x" * 2048)
    assert _storage_error(too_big) == ("413", "Payload too large")
    with pytest.raises(StorageApiError) as bad_type:
        files.upload(f"{uid}/doc.pdf", b"%PDF", {"content-type": "application/pdf"})
    assert _storage_error(bad_type) == ("415", "invalid_mime_type")
    assert bad_type.value.message == "mime type application/pdf is not supported"
    files.upload(f"{uid}/ok.png", b"\x89PNG", {"content-type": "image/png"})


def test_move_copy_remove(bucket: str, user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    files = client.storage.from_(bucket)
    files.upload(f"{uid}/orig.txt", b"orig")
    copied = files.copy(f"{uid}/orig.txt", f"{uid}/copy.txt")
    assert copied["Key"] == f"{bucket}/{uid}/copy.txt"
    assert files.move(f"{uid}/copy.txt", f"{uid}/moved.txt") == {
        "message": "Successfully moved"}
    assert files.download(f"{uid}/moved.txt") == b"orig"
    assert not files.exists(f"{uid}/copy.txt")
    removed = files.remove([f"{uid}/moved.txt", f"{uid}/orig.txt"])
    assert sorted(r["name"] for r in removed) == [f"{uid}/moved.txt", f"{uid}/orig.txt"]


def test_signed_upload_url(config: Any, bucket: str, user_a: tuple[str, Client],
                           user_b: tuple[str, Client]) -> None:
    uid, client = user_a
    signed = client.storage.from_(bucket).create_signed_upload_url(f"{uid}/via-token.txt")
    anonymous = create_client(config.api_url, publishable_key(config))
    anonymous.storage.from_(bucket).upload_to_signed_url(
        f"{uid}/via-token.txt", signed["token"], b"token upload")
    assert client.storage.from_(bucket).download(f"{uid}/via-token.txt") == b"token upload"
    _, other = user_b
    with pytest.raises(StorageApiError) as denied:
        other.storage.from_(bucket).create_signed_upload_url(f"{uid}/b-wants-in.txt")
    assert _storage_error(denied) == ("403", "Unauthorized")


# --- objects: the other user -------------------------------------------------------------


def test_other_user_is_kept_out(config: Any, bucket: str, user_a: tuple[str, Client],
                                user_b: tuple[str, Client]) -> None:
    uid_a, a = user_a
    _, b = user_b
    path = f"{uid_a}/private.txt"
    a.storage.from_(bucket).upload(path, b"secret")
    theirs = b.storage.from_(bucket)

    with pytest.raises(StorageApiError) as read:
        theirs.download(path)
    assert _storage_error(read) == ("404", "not_found")
    assert theirs.list(uid_a) == [] and theirs.list() == []
    with pytest.raises(StorageApiError):
        theirs.info(path)
    with pytest.raises(StorageApiError) as sign:
        theirs.create_signed_url(path, 60)
    assert _storage_error(sign) == ("404", "not_found")
    with pytest.raises(StorageApiError) as upsert:
        theirs.upload(path, b"pwned", {"upsert": "true"})
    assert _storage_error(upsert) == ("403", "Unauthorized")
    with pytest.raises(StorageApiError) as update:
        theirs.update(path, b"pwned")
    assert _storage_error(update) == ("403", "Unauthorized")
    with pytest.raises(StorageApiError) as move:
        theirs.move(path, f"{uid_a}/stolen.txt")
    assert _storage_error(move) == ("404", "not_found")
    assert theirs.remove([path]) == []
    assert a.storage.from_(bucket).download(path) == b"secret"


# --- crash safety -----------------------------------------------------------------------


def test_refused_uploads_leave_no_bytes(config: Any, bucket: str, user_a: tuple[str, Client],
                                        user_b: tuple[str, Client]) -> None:
    uid_a, a = user_a
    _, b = user_b
    before = _files_under(config.storage_dir)
    with pytest.raises(StorageApiError):  # refused by RLS
        b.storage.from_(bucket).upload(f"{uid_a}/intruder.txt", b"nope")
    with pytest.raises(StorageApiError):  # refused after streaming (too large)
        a.storage.from_(bucket).upload(f"{uid_a}/huge.txt", b"y" * 4096)
    assert _files_under(config.storage_dir) == before


def test_failed_commit_removes_placed_bytes(config: Any, bucket: str,
                                            user_a: tuple[str, Client]) -> None:
    """The bytes are renamed into place before commit; a failing commit must take them
    away again (a deferred constraint trigger fails at commit time)."""
    uid, a = user_a
    fn, trig = f"fail_commit_{uuid.uuid4().hex[:6]}", f"fail_commit_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
        conn.execute(f"""create function public.{fn}() returns trigger language plpgsql as $$
            begin
              if new.name like '%/boom.txt' and new.version <> '1' then
                raise exception 'refused at commit';
              end if;
              return null;
            end $$""")
        conn.execute(f"create constraint trigger {trig} after insert on storage.objects "
                     f"deferrable initially deferred for each row execute function "
                     f"public.{fn}()")
    try:
        before = _files_under(config.storage_dir)
        with pytest.raises(StorageApiError) as failed:
            a.storage.from_(bucket).upload(f"{uid}/boom.txt", b"boom")
        assert str(failed.value.status) == "500"
        assert _files_under(config.storage_dir) == before
        assert not a.storage.from_(bucket).exists(f"{uid}/boom.txt")
    finally:
        with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
            conn.execute(f"drop trigger if exists {trig} on storage.objects")
            conn.execute(f"drop function if exists public.{fn}()")


# --- public buckets ---------------------------------------------------------------------


def test_public_route_only_for_public_buckets(config: Any, admin: Client,
                                              bucket: str) -> None:
    name = f"pub-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(name, options={"public": True})
    try:
        admin.storage.from_(name).upload("a.txt", b"public bytes")
        url = admin.storage.from_(name).get_public_url("a.txt")
        assert httpx.get(url).content == b"public bytes"
        private = httpx.get(f"{config.api_url}/storage/v1/object/public/{bucket}/x/y.txt")
        assert private.status_code == 400 and private.json()["statusCode"] == "404"
        # An object that exists in the private bucket answers exactly as a missing one:
        # the public route tells nobody which private objects exist.
        hidden = f"probe-{uuid.uuid4().hex[:8]}.txt"
        admin.storage.from_(bucket).upload(hidden, b"private bytes")
        existing = httpx.get(f"{config.api_url}/storage/v1/object/public/{bucket}/{hidden}")
        assert (existing.status_code, existing.json()) == (400, private.json())
    finally:
        admin.storage.empty_bucket(name)
        admin.storage.delete_bucket(name)


# --- reads under concurrent writes, ranges, odd rows, keys on disk ------------------------


def _headers(config: Any, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "apikey": publishable_key(config)}


def test_downloads_racing_overwrites_never_miss(config: Any, bucket: str,
                                                users: dict[str, tuple[str, str]]) -> None:
    """An overwrite removes the replaced version right after its commit; a download that
    read the older row must then serve the newer version, never a 404."""
    uid, token = users["a"]
    url = f"{config.api_url}/storage/v1/object/{bucket}/{uid}/race.txt"
    headers = _headers(config, token)
    versions = [f"version {i:02d}".encode() for i in range(20)]
    httpx.post(url, content=versions[0], headers={**headers, "content-type": "text/plain"})

    async def race() -> tuple[list[httpx.Response], list[httpx.Response]]:
        reads: list[httpx.Response] = []
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            writing = asyncio.gather(*(client.post(url, content=body, headers={
                **headers, "content-type": "text/plain", "x-upsert": "true"})
                for body in versions))

            async def reader() -> None:
                # Keep reading while the overwrites go on: every one of them is a chance.
                while True:
                    reads.append(await client.get(
                        url.replace("/object/", "/object/authenticated/"), headers=headers))
                    if writing.done():
                        return

            await asyncio.gather(*(reader() for _ in range(40)))
            return list(await writing), reads

    writes, reads = asyncio.run(race())
    assert [w.status_code for w in writes] == [200] * 20, [w.text for w in writes]
    assert [(r.status_code, r.text[:60]) for r in reads if r.status_code != 200] == []
    assert all(r.content in versions for r in reads)


def test_copies_racing_overwrites_of_their_source(config: Any, bucket: str,
                                                  users: dict[str, tuple[str, str]],
                                                  user_a: tuple[str, Client]) -> None:
    """A copy whose source version is replaced (and its file removed) under it copies the
    newer version: no 500, and the copy's metadata describes the bytes it got."""
    uid, token = users["a"]
    base = f"{config.api_url}/storage/v1/object"
    url = f"{base}/{bucket}/{uid}/copy-race.txt"
    headers = _headers(config, token)
    versions = [f"v{i:02d}".encode() * (i + 1) for i in range(20)]
    httpx.post(url, content=versions[0], headers={**headers, "content-type": "text/plain"})
    targets = iter(range(10_000))

    async def race() -> tuple[list[httpx.Response], list[tuple[str, httpx.Response]]]:
        copies: list[tuple[str, httpx.Response]] = []
        async with httpx.AsyncClient(timeout=60,
                                     limits=httpx.Limits(max_connections=40)) as client:
            writing = asyncio.gather(*(client.post(url, content=body, headers={
                **headers, "content-type": "text/plain", "x-upsert": "true"})
                for body in versions))

            async def copier() -> None:
                while True:
                    target = f"{uid}/copies/{next(targets)}.txt"
                    copied = await client.post(f"{base}/copy", headers=headers, json={
                        "bucketId": bucket, "sourceKey": f"{uid}/copy-race.txt",
                        "destinationKey": target})
                    copies.append((target, copied))
                    if writing.done():
                        return

            await asyncio.gather(*(copier() for _ in range(20)))
            return list(await writing), copies

    writes, copies = asyncio.run(race())
    assert [w.status_code for w in writes] == [200] * 20
    assert [(c.status_code, c.text[:80]) for _, c in copies if c.status_code != 200] == []
    files = user_a[1].storage.from_(bucket)
    for target, _ in copies[::7]:
        body = files.download(target)
        assert body in versions and files.info(target)["size"] == len(body)


def test_byte_ranges(config: Any, bucket: str, users: dict[str, tuple[str, str]],
                     user_a: tuple[str, Client]) -> None:
    """Single byte ranges (what AVPlayer sends for videos) on signed and authenticated
    downloads: 206 + Content-Range, 416 when unsatisfiable, several ranges -> whole body."""
    uid, files = users["a"][0], user_a[1].storage.from_(bucket)
    files.upload(f"{uid}/range.txt", b"0123456789", {"content-type": "text/plain"})
    signed = files.create_signed_url(f"{uid}/range.txt", 60)["signedURL"]
    assert signed is not None
    authenticated = (f"{config.api_url}/storage/v1/object/authenticated/{bucket}/"
                     f"{uid}/range.txt")
    for url, headers in ((signed, {}), (authenticated, _headers(config, users["a"][1]))):
        whole = httpx.get(url, headers=headers)
        assert whole.status_code == 200 and whole.content == b"0123456789"
        assert whole.headers["accept-ranges"] == "bytes"
        head = httpx.head(url, headers={**headers, "Range": "bytes=0-3"})
        assert (head.status_code, head.content) == (206, b"")
        assert head.headers["content-length"] == "4"
        for asked, body, content_range in (("bytes=2-5", b"2345", "bytes 2-5/10"),
                                           ("bytes=7-", b"789", "bytes 7-9/10"),
                                           ("bytes=-3", b"789", "bytes 7-9/10"),
                                           ("bytes=-30", b"0123456789", "bytes 0-9/10"),
                                           ("bytes=8-100", b"89", "bytes 8-9/10"),
                                           ("bytes=0-0", b"0", "bytes 0-0/10")):
            part = httpx.get(url, headers={**headers, "Range": asked})
            assert (part.status_code, part.content) == (206, body), asked
            assert part.headers["content-range"] == content_range
            assert part.headers["content-length"] == str(len(body))
            assert part.headers["content-type"] == "text/plain"
        for unsatisfiable in ("bytes=10-", "bytes=10-20", "bytes=-0"):
            refused = httpx.get(url, headers={**headers, "Range": unsatisfiable})
            assert refused.status_code == 416, unsatisfiable
            assert refused.headers["content-range"] == "bytes */10"
        for ignored in ("bytes=0-1,4-5", "bytes=5-2", "items=0-1", "bytes=x-"):
            full = httpx.get(url, headers={**headers, "Range": ignored})
            assert (full.status_code, full.content) == (200, b"0123456789"), ignored
        stale = httpx.get(url, headers={**headers, "Range": "bytes=0-1",
                                        "If-Range": '"not-the-etag"'})
        assert (stale.status_code, stale.content) == (200, b"0123456789")
        fresh = httpx.get(url, headers={**headers, "Range": "bytes=0-1",
                                        "If-Range": whole.headers["etag"]})
        assert (fresh.status_code, fresh.content) == (206, b"01")


def test_row_without_version_is_not_found(config: Any, bucket: str, sql: Any,
                                          user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    files = client.storage.from_(bucket)
    files.upload(f"{uid}/no-version.txt", b"bytes")
    signed = files.create_signed_url(f"{uid}/no-version.txt", 60)["signedURL"]
    assert signed is not None
    sql("update storage.objects set version = null where bucket_id = %s and name = %s",
        bucket, f"{uid}/no-version.txt")
    with pytest.raises(StorageApiError) as missing:
        files.download(f"{uid}/no-version.txt")
    assert _storage_error(missing) == ("404", "not_found")
    response = httpx.get(signed)
    assert response.status_code == 400 and response.json()["code"] == "NoSuchKey"


def test_keys_are_opaque_on_disk(config: Any, bucket: str,
                                 users: dict[str, tuple[str, str]],
                                 user_b: tuple[str, Client]) -> None:
    """`..` in a key is part of the name, never a way into another user's directory."""
    (uid_a, token_a), uid_b = users["a"], users["b"][0]
    bucket_dir = config.storage_dir / bucket
    theirs = _files_under(bucket_dir / uid_b)
    base = f"{config.api_url}/storage/v1/object"
    key = f"{uid_a}/%2E%2E/{uid_b}/y.txt"
    stored = httpx.post(f"{base}/{bucket}/{key}", content=b"dots",
                        headers={**_headers(config, token_a), "content-type": "text/plain"})
    assert stored.status_code == 200, stored.text
    assert stored.json()["Key"] == f"{bucket}/{uid_a}/../{uid_b}/y.txt"
    assert _files_under(bucket_dir / uid_b) == theirs
    placed = _files_under(bucket_dir / uid_a / "%2E." / uid_b / "y.txt")
    assert [p.read_bytes() for p in placed] == [b"dots"]
    fetched = httpx.get(f"{base}/authenticated/{bucket}/{key}",
                        headers=_headers(config, token_a))
    assert fetched.content == b"dots"
    with pytest.raises(StorageApiError) as other:
        user_b[1].storage.from_(bucket).download(f"{uid_b}/y.txt")
    assert _storage_error(other) == ("404", "not_found")


def test_bytes_on_disk_are_private(config: Any, bucket: str,
                                   user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    files = client.storage.from_(bucket)
    files.upload(f"{uid}/mode.txt", b"private")
    files.copy(f"{uid}/mode.txt", f"{uid}/mode-copy.txt")
    assert stat.S_IMODE(config.storage_dir.stat().st_mode) == 0o700
    for name in ("mode.txt", "mode-copy.txt"):
        (version,) = _files_under(config.storage_dir / bucket / uid / name)
        assert stat.S_IMODE(version.stat().st_mode) == 0o600


def test_sign_many_is_capped(bucket: str, user_a: tuple[str, Client]) -> None:
    uid, client = user_a
    with pytest.raises(StorageApiError) as capped:
        client.storage.from_(bucket).create_signed_urls(
            [f"{uid}/{i}.txt" for i in range(1001)], 60)
    assert capped.value.message == "body/paths must NOT have more than 1000 items"


def test_startup_makes_the_directory_private_and_drops_stale_temp_files(
        tmp_path: Path) -> None:
    root = tmp_path / "storage"
    (root / ".tmp").mkdir(parents=True)
    root.chmod(0o755)
    stale, recent = root / ".tmp" / "stale.part", root / ".tmp" / "recent.part"
    stale.write_bytes(b"crashed")
    recent.write_bytes(b"in flight")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    FileStore(root).prepare()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert not stale.exists() and recent.exists()


def test_unknown_route_answers_storage_json(config: Any) -> None:
    response = httpx.get(f"{config.api_url}/storage/v1/no/such/route")
    assert response.status_code == 404
    body = response.json()
    assert body["statusCode"] == "404" and body["error"] == "Not Found"
    assert body["message"].startswith("Route GET:")
