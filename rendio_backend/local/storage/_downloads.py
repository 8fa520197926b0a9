"""Reading objects: their bytes (whole or one range, with Storage's headers) and their
info, on the public, authenticated and optional-auth routes
(supabase/storage `src/http/routes/object/get*.ts`)."""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import anyio
from psycopg.rows import DictRow
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .._http import json_response
from . import _errors as errors
from . import _store as store
from ._auth import ANON, SERVICE, Caller
from ._context import StorageContext
from ._limits import must_be_valid_bucket_name, must_be_valid_key

_CHUNK = 64 * 1024
# How often in a row a download or copy may lose the race against overwrites before it
# gives up (see `with_current_bytes`); each loss means a newer version was committed.
_OPEN_ATTEMPTS = 5
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.ASCII | re.IGNORECASE)
_T = TypeVar("_T")
Lookup = Callable[[], Awaitable[DictRow]]


@dataclass(frozen=True)
class ObjectDownloads:
    """`GET /object[/public|/authenticated]/...` and `GET /object/info/...`."""

    context: StorageContext

    async def get_object(self, request: Request) -> Response:
        return await self._serve(request, self.context.caller(request, optional=True))

    async def get_authenticated_object(self, request: Request) -> Response:
        return await self._serve(request, self.context.caller(request))

    async def get_public_object(self, request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]

        async def lookup() -> DictRow:
            # The bucket is checked first: a private bucket answers the same whether the
            # object exists or not.
            return await self._find_readable(request, ANON, bucket, name,
                                             "storage.object.get_public", public_route=True)

        return await self.stream(request, bucket, name, lookup)

    async def info_optional(self, request: Request) -> Response:
        return await self._object_info(request, self.context.caller(request, optional=True),
                                       False)

    async def info_authenticated(self, request: Request) -> Response:
        return await self._object_info(request, self.context.caller(request), False)

    async def info_public(self, request: Request) -> Response:
        return await self._object_info(request, ANON, True)

    async def stream(self, request: Request, bucket: str, name: str, lookup: Lookup,
                     expires: str | None = None) -> Response:
        """The current bytes of the object `lookup` finds (see `with_current_bytes`)."""
        files = self.context.files
        row, handle = await with_current_bytes(
            lookup, lambda row: files.open_version(bucket, name, row["version"]))
        try:
            return _file_response(request, row, handle, expires)
        except BaseException:
            handle.close()
            raise

    async def _serve(self, request: Request, caller: Caller) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]

        async def lookup() -> DictRow:
            return await self._find_readable(request, caller, bucket, name,
                                             "storage.object.get_authenticated",
                                             public_route=False)

        return await self.stream(request, bucket, name, lookup)

    async def _find_readable(self, request: Request, caller: Caller, bucket: str, name: str,
                             operation: str, *, public_route: bool) -> DictRow:
        """Storage's read rule: a public bucket (or the public route) serves every object;
        otherwise the object must be visible to the caller under RLS."""
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        async with self.context.transaction(SERVICE, request, operation) as tx:
            found = await store.find_bucket(tx, bucket)
            if found is None or (not caller.authenticated and not found["public"]):
                raise errors.no_such_bucket()
            if found["public"] or public_route:
                return await store.find_object(tx, bucket, name)
        async with self.context.transaction(caller, request, operation) as tx:
            return await store.find_object(tx, bucket, name)

    async def _object_info(self, request: Request, caller: Caller,
                           public_route: bool) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        operation = ("storage.object.info_public" if public_route
                     else "object.get_authenticated_info")
        row = await self._find_readable(request, caller, bucket, name, operation,
                                        public_route=public_route)
        meta = row["metadata"] or {}
        body = {
            "id": str(row["id"]), "name": row["name"], "version": row["version"],
            "bucket_id": row["bucket_id"], "size": meta.get("size"),
            "content_type": meta.get("mimetype"), "cache_control": meta.get("cacheControl"),
            "etag": meta.get("eTag"), "metadata": row["user_metadata"],
            "last_modified": store.iso(row["updated_at"]),
            "created_at": store.iso(row["created_at"]),
        }
        headers = {"Cache-Control": meta.get("cacheControl") or "no-cache"}
        if meta.get("eTag"):
            headers["ETag"] = meta["eTag"]
        last_modified = _http_date(meta.get("lastModified"))
        if last_modified:
            headers["Last-Modified"] = last_modified
        return json_response(body, headers=headers)


async def with_current_bytes(lookup: Lookup,
                             use: Callable[[DictRow], _T]) -> tuple[DictRow, _T]:
    """`use(row)` on the object's current row, where `use` touches the row's version file
    and raises FileNotFoundError when it is gone.

    A write removes the version it replaced right after its commit, so whoever read the
    older row can find its file gone: then the row is read again (the same lookup, so the
    same RLS decision) and the newer version used, as long as the version keeps moving on.
    No row, no version, or the same version without bytes: NoSuchKey, like Storage.
    """
    row = await lookup()
    for _ in range(_OPEN_ATTEMPTS):
        try:
            return row, use(row)
        except FileNotFoundError:
            fresh = await lookup()
            if fresh["version"] == row["version"]:
                break
            row = fresh
    raise errors.no_such_key()


def _file_response(request: Request, row: DictRow, handle: BinaryIO,
                   expires: str | None) -> Response:
    """The bytes (all, or the one range asked for) with Storage's headers; owns
    `handle` (the streamed body closes it, any other answer closes it here)."""
    meta = row["metadata"] or {}
    size = os.fstat(handle.fileno()).st_size
    etag = meta.get("eTag")
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": served_type(meta.get("mimetype")),
        # Beyond Storage, which does not send it: no browser may sniff bytes into HTML.
        "X-Content-Type-Options": "nosniff",
        "X-Robots-Tag": "none",
        "Content-Length": str(size),
    }
    if etag:
        headers["ETag"] = etag
    last_modified = _http_date(meta.get("lastModified"))
    if last_modified:
        headers["Last-Modified"] = last_modified
    if expires:
        # A signed URL's lifetime is its only caching rule (Storage's renderer).
        headers["Expires"] = expires
    else:
        headers["Cache-Control"] = _cache_control(request, meta.get("cacheControl"), etag)
    download = request.query_params.get("download")
    if download is not None:
        encoded = quote(download, safe="")
        headers["Content-Disposition"] = ("attachment;" if download == "" else
                                          f"attachment; filename={encoded}; "
                                          f"filename*=UTF-8''{encoded}")
    if etag and request.headers.get("if-none-match") == etag:
        handle.close()
        headers.pop("Content-Length")
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted and if_range and if_range not in (etag, last_modified):
        wanted = None  # the client's copy is stale: send it everything (RFC 9110 13.1.5)
    try:
        span = byte_range(wanted, size)
    except RangeNotSatisfiable:
        handle.close()
        return Response(status_code=416, headers={
            "Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    status, first, length = 200, 0, size
    if span is not None:
        first, last = span
        status, length = 206, last - first + 1
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        handle.close()
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_read_file(handle, first, length), status_code=status,
                             headers=headers)


async def _read_file(handle: BinaryIO, offset: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes of `handle` from `offset`, off the event loop; closes `handle`."""
    try:
        if offset:
            handle.seek(offset)
        while length > 0:
            chunk = await anyio.to_thread.run_sync(handle.read, min(_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


class RangeNotSatisfiable(Exception):
    """The range starts past the end of the bytes (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a `Range` header asks for, as inclusive `(first, last)` within
    `size`; None to send the whole body (no header, another unit, several ranges or a
    malformed one: RFC 9110 14.2 lets a server ignore those). `a-b`, `a-` and `-n`
    (the last n bytes) are understood; RangeNotSatisfiable when nothing of it exists."""
    match = _RANGE.match(header or "")
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        if size == 0:
            return None
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def served_type(stored: str | None) -> str:
    """The Content-Type an object is served with: as stored, except that anything
    naming HTML becomes `text/plain` (Storage's `normalizeContentType`; compared
    case-insensitively here, as browsers compare types)."""
    if not stored:
        return "application/octet-stream"
    return "text/plain" if "text/html" in stored.lower() else stored


def _cache_control(request: Request, stored: str | None, etag: str | None) -> str:
    """The object's Cache-Control; a revalidation that missed may serve stale for 30 s."""
    value = stored or "no-cache"
    asked = request.headers.get("if-none-match")
    if asked and asked != etag:
        value += ", stale-while-revalidate=30"
    return value


def _http_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
