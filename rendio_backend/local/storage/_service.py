"""The Storage HTTP API (the subset the official clients use), backed by PostgreSQL + disk.

Routes, bodies, status codes and error bodies follow supabase/storage
`src/http/routes/{bucket,object}/*.ts`; the operations follow `src/storage/{storage,object,
uploader}.ts`. Authorization is PostgreSQL's: each operation runs its statements on
storage.buckets / storage.objects in a transaction scoped as the caller (see `_db`), and
Storage's "superuser" steps run as `service_role`, exactly where Storage uses `asSuperUser`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import anyio
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..config import StackConfig
from . import _errors as errors
from ._auth import (
    ANON,
    SCOPE_DOWNLOAD,
    SCOPE_UPLOAD,
    SERVICE,
    Caller,
    authenticate,
    sign_url_token,
    verify_url_token,
)
from ._db import RequestInfo, Tx, test_permission, transaction
from ._files import FileStore
from ._limits import (
    DEFAULT_FILE_SIZE_LIMIT,
    EMPTY_BUCKET_MAX,
    MAX_OBJECTS_PER_REQUEST,
    is_empty_folder,
    is_uuid,
    must_be_valid_bucket_name,
    must_be_valid_key,
    parse_file_size,
    validate_bucket_mime_types,
    validate_upload_mime_type,
)
from ._uploads import read_upload

log = logging.getLogger("rendio.local.storage")

UPLOAD_SIGNED_URL_EXPIRES = 7200  # Storage's UPLOAD_SIGNED_URL_EXPIRATION_TIME default
_CHUNK = 64 * 1024
# How often in a row a download or copy may lose the race against overwrites before it
# gives up (see `_with_current_bytes`); each loss means a newer version was committed.
_OPEN_ATTEMPTS = 5
Handler = Callable[[Request], Awaitable[Response]]
_T = TypeVar("_T")

_BUCKET_COLUMNS = ("id, name, owner, public, created_at, updated_at, file_size_limit, "
                   "allowed_mime_types")
_INSERT_OBJECT = """
insert into storage.objects (bucket_id, name, owner, owner_id, metadata, user_metadata, version)
values (%(bucket)s, %(name)s, %(owner)s, %(owner_id)s, %(metadata)s, %(user_metadata)s,
        %(version)s)
"""
_UPSERT_OBJECT = _INSERT_OBJECT + """
on conflict (name, bucket_id) do update
set metadata = excluded.metadata, user_metadata = excluded.user_metadata,
    version = excluded.version, updated_at = now(),
    owner = coalesce(excluded.owner, storage.objects.owner),
    owner_id = coalesce(excluded.owner_id, storage.objects.owner_id)
"""


# --- JSON shapes ----------------------------------------------------------------------
def iso(value: Any) -> Any:
    """Timestamps as node-postgres + JSON.stringify render them (`Date.toISOString()`)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def _str(value: Any) -> str:
    # Storage's response schemas type these as strings; fast-json-stringify renders null as "".
    return "" if value is None else str(value)


def bucket_json(row: DictRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = _str(value) if key in ("id", "name", "owner", "owner_id", "type") else iso(
            value)
    return out


def object_json(row: DictRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("name", "bucket_id", "owner", "owner_id", "version", "id", "updated_at",
                "created_at", "last_accessed_at", "metadata", "user_metadata"):
        if key not in row:
            continue
        value = row[key]
        if key in ("name", "bucket_id", "owner", "owner_id", "version"):
            out[key] = _str(value)
        elif key == "id":
            out[key] = None if value is None else str(value)
        else:
            out[key] = iso(value)
    return out


# --- request helpers ------------------------------------------------------------------
async def json_body(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return {}
        raise errors.validation_error(
            "Body cannot be empty when content-type is set to 'application/json'")
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.validation_error(
            "Body is not valid JSON but content-type is set to 'application/json'") from None
    if not isinstance(body, dict):
        raise errors.validation_error("body must be object")
    return body


def _require(body: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in body:
            raise errors.validation_error(f"body must have required property '{name}'")


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise errors.validation_error(f"body/{name} must be string")
    return value


def _integer(value: Any, where: str, minimum: int | None = None) -> int:
    """Ajv with `coerceTypes`: "60" is 60, "x" is an error."""
    if isinstance(value, bool):
        raise errors.validation_error(f"{where} must be integer")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or (isinstance(value, str) and value.strip() != str(number)):
        raise errors.validation_error(f"{where} must be integer")
    if minimum is not None and number < minimum:
        raise errors.validation_error(f"{where} must be >= {minimum}")
    return number


class StorageService:
    """The local Storage service: `app` plus `startup()` / `shutdown()` (LocalService)."""

    def __init__(self, config: StackConfig, *, file_size_limit: int = DEFAULT_FILE_SIZE_LIMIT,
                 pool_max_size: int = 10) -> None:
        self.config = config
        self.file_size_limit = file_size_limit
        self.files = FileStore(config.storage_dir)
        self._pool_max_size = pool_max_size
        self._pool: AsyncConnectionPool[Any] | None = None
        self.app = Starlette(routes=self._routes(),
                             exception_handlers={404: _route_not_found})

    # --- lifecycle ----------------------------------------------------------------------
    async def startup(self) -> None:
        """Create the storage directory and open the pool (as supabase_storage_admin)."""
        await anyio.to_thread.run_sync(self.files.prepare)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.config.role_db_url("supabase_storage_admin"), min_size=1,
            max_size=self._pool_max_size, open=False, kwargs={"autocommit": True},
            name="rendio-storage",
            # A connection dropped by a database reset or restart is replaced, not used.
            check=AsyncConnectionPool.check_connection)
        await pool.open(wait=True, timeout=30)
        self._pool = pool

    async def shutdown(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            raise RuntimeError("the storage service is not started")
        return self._pool

    # --- plumbing -----------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        def r(path: str, handler: Handler, methods: list[str]) -> Route:
            return Route(path, _endpoint(handler), methods=methods)

        name = "{bucket}/{name:path}"
        return [
            r("/bucket", self.list_buckets, ["GET"]),
            r("/bucket", self.create_bucket, ["POST"]),
            r("/bucket/{bucket}/empty", self.empty_bucket, ["POST"]),
            r("/bucket/{bucket}", self.get_bucket, ["GET"]),
            r("/bucket/{bucket}", self.update_bucket, ["PUT"]),
            r("/bucket/{bucket}", self.delete_bucket, ["DELETE"]),
            r("/object/list/{bucket}", self.list_objects, ["POST"]),
            r("/object/move", self.move_object, ["POST"]),
            r("/object/copy", self.copy_object, ["POST"]),
            r("/object/sign/{bucket}", self.sign_urls, ["POST"]),
            r(f"/object/sign/{name}", self.sign_url, ["POST"]),
            r(f"/object/sign/{name}", self.get_signed_object, ["GET"]),
            r(f"/object/upload/sign/{name}", self.sign_upload_url, ["POST"]),
            r(f"/object/upload/sign/{name}", self.upload_signed_object, ["PUT"]),
            r(f"/object/info/public/{name}", self.info_public, ["GET"]),
            r(f"/object/info/authenticated/{name}", self.info_authenticated, ["GET"]),
            r(f"/object/info/{name}", self.info_optional, ["GET"]),
            r(f"/object/public/{name}", self.get_public_object, ["GET"]),
            r(f"/object/authenticated/{name}", self.get_authenticated_object, ["GET"]),
            r(f"/object/{name}", self.get_object, ["GET"]),
            r(f"/object/{name}", self.create_object, ["POST"]),
            r(f"/object/{name}", self.update_object, ["PUT"]),
            r(f"/object/{name}", self.delete_object, ["DELETE"]),
            r("/object/{bucket}", self.delete_objects, ["DELETE"]),
        ]

    def _caller(self, request: Request, *, optional: bool = False) -> Caller:
        return authenticate(request.headers.get("authorization"), self.config.jwt_secret,
                            optional=optional)

    @staticmethod
    def _info(request: Request, operation: str) -> RequestInfo:
        path = request.url.path
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if request.url.query:
            path = f"{path}?{request.url.query}"
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        return RequestInfo(method=request.method, path=path, operation=operation,
                           headers=headers)

    # --- buckets ------------------------------------------------------------------------
    async def list_buckets(self, request: Request) -> Response:
        caller = self._caller(request)
        q = request.query_params
        sql = f"select {_BUCKET_COLUMNS}, type from storage.buckets"
        params: dict[str, Any] = {}
        if q.get("search"):
            sql += " where name ilike %(search)s"
            params["search"] = "%" + _escape_like(q["search"]) + "%"
        column = q.get("sortColumn")
        if column is not None:
            if column not in ("id", "name", "created_at", "updated_at"):
                raise errors.validation_error(
                    "querystring/sortColumn must be equal to one of the allowed values")
            order = "desc" if q.get("sortOrder", "asc").lower() == "desc" else "asc"
            sql += f' order by "{column}" {order}'
        if q.get("limit") is not None:
            sql += " limit %(limit)s"
            params["limit"] = _integer(q["limit"], "querystring/limit", 1)
        if q.get("offset") is not None:
            sql += " offset %(offset)s"
            params["offset"] = _integer(q["offset"], "querystring/offset", 0)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.bucket.list")) as tx:
            rows = await tx.all(sql, params)
        return JSONResponse([bucket_json(row) for row in rows])

    async def get_bucket(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        async with transaction(self.pool, caller,
                               self._info(request, "storage.bucket.get")) as tx:
            row = await tx.one(f"select {_BUCKET_COLUMNS} from storage.buckets "
                               "where id = %(id)s limit 1", {"id": bucket})
        if row is None:
            raise errors.no_such_bucket()
        return JSONResponse(bucket_json(row))

    def _bucket_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """`public`, `file_size_limit` and `allowed_mime_types` as given, validated."""
        settings: dict[str, Any] = {}
        if "public" in body:
            if not isinstance(body["public"], bool):
                raise errors.validation_error("body/public must be boolean")
            settings["public"] = body["public"]
        if "file_size_limit" in body:
            limit = body["file_size_limit"]
            if limit is None:
                settings["file_size_limit"] = None
            elif isinstance(limit, bool) or not isinstance(limit, int | str):
                raise errors.validation_error("body/file_size_limit must be integer")
            else:
                if isinstance(limit, int) and limit < 0:
                    raise errors.validation_error("body/file_size_limit must be >= 0")
                settings["file_size_limit"] = parse_file_size(limit, self.file_size_limit)
        if "allowed_mime_types" in body:
            types = body["allowed_mime_types"]
            if types is not None:
                if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                    raise errors.validation_error("body/allowed_mime_types must be array")
                types = [t for t in types if t]
                validate_bucket_mime_types(types)
            settings["allowed_mime_types"] = types
        return settings

    async def create_bucket(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await json_body(request)
        _require(body, "name")
        name = _string(body, "name")
        bucket_id = body.get("id") or name
        if not isinstance(bucket_id, str):
            raise errors.validation_error("body/id must be string")
        if name.strip() != name:
            raise errors.invalid_bucket_name()
        must_be_valid_bucket_name(name)
        settings = self._bucket_settings(body)
        owner = caller.sub
        row = {
            "id": bucket_id, "name": name, "owner": owner if is_uuid(owner) else None,
            "owner_id": owner, "public": settings.get("public", False),
            "file_size_limit": settings.get("file_size_limit"),
            "allowed_mime_types": settings.get("allowed_mime_types"),
        }
        try:
            async with transaction(self.pool, caller,
                                   self._info(request, "storage.bucket.create")) as tx:
                await tx.all(
                    "insert into storage.buckets (id, name, owner, owner_id, public, "
                    "file_size_limit, allowed_mime_types) values (%(id)s, %(name)s, "
                    "%(owner)s, %(owner_id)s, %(public)s, %(file_size_limit)s, "
                    "%(allowed_mime_types)s)", row)
        except errors.StorageApiError as exc:
            if exc.code == "ResourceAlreadyExists":
                raise errors.bucket_already_exists() from None
            raise
        return JSONResponse({"name": name})

    async def update_bucket(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        if not any(k in body for k in ("public", "file_size_limit", "allowed_mime_types")):
            raise errors.validation_error("body must have required property 'public'")
        must_be_valid_bucket_name(bucket)
        settings = self._bucket_settings(body)
        assignments = ", ".join(f"{column} = %({column})s" for column in settings)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.bucket.update")) as tx:
            row = await tx.one(f"update storage.buckets set {assignments} "
                               "where id = %(bucket_id)s returning id",
                               {**settings, "bucket_id": bucket})
        if row is None:
            raise errors.no_such_bucket()
        return JSONResponse({"message": "Successfully updated"})

    async def empty_bucket(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        await json_body(request, allow_empty=True)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.bucket.empty")) as tx:
            # The caller must see the bucket and its objects (RLS) ...
            if await tx.one("select name from storage.buckets where id = %(b)s",
                            {"b": bucket}) is None:
                raise errors.no_such_bucket()
            count = await tx.all("select 1 from storage.objects where bucket_id = %(b)s "
                                 "limit %(n)s", {"b": bucket, "n": EMPTY_BUCKET_MAX + 1})
            if len(count) > EMPTY_BUCKET_MAX:
                raise errors.unable_to_empty_bucket(
                    "Unable to empty the bucket because it contains too many objects")
            # ... then everything goes, as Storage's admin queue job does, but at once.
            await tx.scope(SERVICE)
            removed = await tx.all("delete from storage.objects where bucket_id = %(b)s "
                                   "returning name, version", {"b": bucket})
        # Rows first, bytes after commit: a crash in between leaves unreferenced version
        # files (harmless), never a row without its bytes. Many unlinks: off the loop.
        await anyio.to_thread.run_sync(
            self.files.discard_versions, bucket, [(r["name"], r["version"]) for r in removed])
        return JSONResponse(
            {"message": "Empty bucket has been queued. Completion may take up to an hour."})

    async def delete_bucket(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        await json_body(request, allow_empty=True)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.bucket.delete")) as tx:
            await tx.scope(SERVICE)
            if await tx.one("select id from storage.buckets where id = %(b)s for update",
                            {"b": bucket}) is None:
                raise errors.no_such_bucket()
            if await tx.one("select 1 from storage.objects where bucket_id = %(b)s limit 1",
                            {"b": bucket}) is not None:
                raise errors.bucket_not_empty()
            await tx.scope(caller)
            if await tx.one("delete from storage.buckets where id = %(b)s returning id",
                            {"b": bucket}) is None:
                raise errors.no_such_bucket()
        return JSONResponse({"message": "Successfully deleted"})

    # --- uploads ------------------------------------------------------------------------
    async def create_object(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        upsert = request.headers.get("x-upsert") == "true"
        obj_id, key = await self._upload(request, caller, bucket, name, upsert=upsert,
                                         owner=caller.sub, operation="storage.object.upload")
        return JSONResponse({"Id": obj_id, "Key": key})

    async def update_object(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        obj_id, key = await self._upload(request, caller, bucket, name, upsert=True,
                                         owner=caller.sub,
                                         operation="storage.object.upload_update")
        return JSONResponse({"Id": obj_id, "Key": key})

    async def sign_upload_url(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        must_be_valid_bucket_name(bucket)
        upsert = request.headers.get("x-upsert") == "true"
        content_length = request.headers.get("content-length")
        await self._can_upload(
            caller, self._info(request, "storage.object.sign_upload_url"), bucket, name,
            upsert=upsert, owner=caller.sub,
            metadata={"mimetype": request.headers.get("content-type"),
                      "contentLength": int(content_length) if content_length and
                      content_length.isdigit() else None})
        url = f"{bucket}/{name}"
        token = sign_url_token(self.config.jwt_secret, {
            "owner": caller.sub, "url": url, "upsert": upsert, "scope": SCOPE_UPLOAD,
        }, UPLOAD_SIGNED_URL_EXPIRES)
        return JSONResponse({"url": f"/object/upload/sign/{url}?token={token}",
                             "token": token})

    async def upload_signed_object(self, request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        token = request.query_params.get("token")
        if token is None:
            raise errors.validation_error("querystring must have required property 'token'")
        must_be_valid_bucket_name(bucket)
        payload = verify_url_token(self.config.jwt_secret, token, bucket=bucket, name=name,
                                   scope=SCOPE_UPLOAD)
        owner = payload.get("owner")
        _, key = await self._upload(
            request, SERVICE, bucket, name, upsert=bool(payload.get("upsert")),
            owner=str(owner) if owner else None, operation="storage.object.upload_signed")
        return JSONResponse({"Key": key})

    async def _can_upload(self, caller: Caller, info: RequestInfo, bucket: str, name: str, *,
                          upsert: bool, owner: str | None, metadata: dict[str, Any]) -> None:
        """Would RLS let `caller` write this row? Checked before any byte is read."""
        must_be_valid_key(name)
        params = _object_params(bucket, name, owner, metadata, None, "1")
        try:
            await test_permission(self.pool, caller, info,
                                  _UPSERT_OBJECT if upsert else _INSERT_OBJECT, params)
        except errors.StorageApiError as exc:
            if exc.code == "ResourceAlreadyExists":
                raise errors.key_already_exists() from None
            raise

    async def _upload(self, request: Request, writer: Caller, bucket: str, name: str, *,
                      upsert: bool, owner: str | None, operation: str) -> tuple[str, str]:
        """Store an upload; returns the object id and `bucket/name`.

        Order (so a failure never leaves a row without bytes or bytes without a row):
        RLS pre-check -> bytes to a temp file -> one transaction as `writer` that locks the
        key, writes the row and renames the temp file to its version path -> commit ->
        remove the replaced version. Any failure before commit removes the temp/version
        file; the rollback removes the row.
        """
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        info = self._info(request, operation)
        async with transaction(self.pool, SERVICE, info) as tx:
            found = await tx.one("select id, file_size_limit, allowed_mime_types "
                                 "from storage.buckets where id = %(b)s", {"b": bucket})
        if found is None:
            raise errors.no_such_bucket()
        max_size = self.file_size_limit
        if found["file_size_limit"] is not None:
            max_size = min(max_size, int(found["file_size_limit"]))
        if is_empty_folder(name):
            max_size = 0
        head = await read_upload(request)
        allowed = found["allowed_mime_types"] or []
        if allowed and not is_empty_folder(name):
            validate_upload_mime_type(head.mimetype, allowed)
        multipart = (request.headers.get("content-type") or "").startswith("multipart/")
        if not multipart and head.declared_length is not None and head.declared_length > max_size:
            raise errors.entity_too_large()
        await self._can_upload(writer, info, bucket, name, upsert=upsert, owner=owner,
                               metadata={"mimetype": head.mimetype,
                                         "contentLength": head.declared_length})

        tmp = await self.files.receive(head.chunks, max_size)
        final = None
        committed = False
        previous: str | None = None
        version = str(uuid.uuid4())
        try:
            if tmp.truncated:
                raise errors.entity_too_large()
            now = datetime.now(UTC)
            metadata = {
                "eTag": f'"{tmp.md5}"', "size": tmp.size, "mimetype": head.mimetype,
                "cacheControl": head.cache_control, "lastModified": iso(now),
                "contentLength": tmp.size, "httpStatusCode": 200,
            }
            final = self.files.object_path(bucket, name, version)
            params = _object_params(bucket, name, owner, metadata, head.user_metadata or {},
                                    version)
            try:
                async with transaction(self.pool, writer, info) as tx:
                    await tx.lock_object(bucket, name)
                    previous = await _current_version(tx, writer, bucket, name)
                    row = await tx.one((_UPSERT_OBJECT if upsert else _INSERT_OBJECT)
                                       + " returning id", params)
                    if row is None:
                        raise errors.access_denied(
                            "new row violates row-level security policy")
                    self.files.place(tmp.path, final)
            except errors.StorageApiError as exc:
                if exc.code == "ResourceAlreadyExists":
                    raise errors.key_already_exists() from None
                raise
            committed = True
        finally:
            if not committed:
                self.files.discard(tmp.path)
                self.files.discard(final)
        if previous and previous != version:
            self.files.discard_version(bucket, name, previous)
        return str(row["id"]), f"{bucket}/{name}"

    # --- reads --------------------------------------------------------------------------
    async def get_object(self, request: Request) -> Response:
        return await self._serve(request, self._caller(request, optional=True))

    async def get_authenticated_object(self, request: Request) -> Response:
        return await self._serve(request, self._caller(request))

    async def get_public_object(self, request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        info = self._info(request, "storage.object.get_public")

        async def lookup() -> DictRow:
            async with transaction(self.pool, SERVICE, info) as tx:
                found = await tx.one("select id from storage.buckets "
                                     "where id = %(b)s and public", {"b": bucket})
                row = await _find_object(tx, bucket, name)
            if found is None:
                raise errors.no_such_bucket()
            return row

        return await self._stream(request, bucket, name, lookup)

    async def _serve(self, request: Request, caller: Caller) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]

        async def lookup() -> DictRow:
            return await self._find_readable(request, caller, bucket, name,
                                             "storage.object.get_authenticated",
                                             public_route=False)

        return await self._stream(request, bucket, name, lookup)

    async def _find_readable(self, request: Request, caller: Caller, bucket: str, name: str,
                             operation: str, *, public_route: bool) -> DictRow:
        """Storage's read rule: a public bucket (or the public route) serves every object;
        otherwise the object must be visible to the caller under RLS."""
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        info = self._info(request, operation)
        async with transaction(self.pool, SERVICE, info) as tx:
            found = await tx.one("select id, public from storage.buckets where id = %(b)s",
                                 {"b": bucket})
            if found is None or (not caller.authenticated and not found["public"]):
                raise errors.no_such_bucket()
            if found["public"] or public_route:
                return await _find_object(tx, bucket, name)
        async with transaction(self.pool, caller, info) as tx:
            return await _find_object(tx, bucket, name)

    async def _open_current(self, bucket: str, name: str,
                            lookup: Callable[[], Awaitable[DictRow]]) -> tuple[DictRow, BinaryIO]:
        """The object's row and its bytes, opened (see `_with_current_bytes`)."""
        return await _with_current_bytes(
            lookup, lambda row: self.files.open_version(bucket, name, row["version"]))

    async def _stream(self, request: Request, bucket: str, name: str,
                      lookup: Callable[[], Awaitable[DictRow]],
                      expires: str | None = None) -> Response:
        row, handle = await self._open_current(bucket, name, lookup)
        try:
            return self._file_response(request, row, handle, expires)
        except BaseException:
            handle.close()
            raise

    @staticmethod
    def _file_response(request: Request, row: DictRow, handle: BinaryIO,
                       expires: str | None) -> Response:
        """The bytes (all, or the one range asked for) with Storage's headers; owns
        `handle` (the streamed body closes it, any other answer closes it here)."""
        meta = row["metadata"] or {}
        size = os.fstat(handle.fileno()).st_size
        headers = {
            "Content-Type": meta.get("mimetype") or "application/octet-stream",
            "Cache-Control": meta.get("cacheControl") or "no-cache",
            "Content-Length": str(size),
            "Accept-Ranges": "bytes",
        }
        etag = meta.get("eTag")
        if etag:
            headers["ETag"] = etag
        last_modified = _http_date(meta.get("lastModified"))
        if last_modified:
            headers["Last-Modified"] = last_modified
        if expires:
            headers["Expires"] = expires
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

    async def info_optional(self, request: Request) -> Response:
        return await self._object_info(request, self._caller(request, optional=True), False)

    async def info_authenticated(self, request: Request) -> Response:
        return await self._object_info(request, self._caller(request), False)

    async def info_public(self, request: Request) -> Response:
        return await self._object_info(request, ANON, True)

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
            "last_modified": iso(row["updated_at"]), "created_at": iso(row["created_at"]),
        }
        headers = {"Cache-Control": meta.get("cacheControl") or "no-cache"}
        if meta.get("eTag"):
            headers["ETag"] = meta["eTag"]
        last_modified = _http_date(meta.get("lastModified"))
        if last_modified:
            headers["Last-Modified"] = last_modified
        return JSONResponse(body, headers=headers)

    async def list_objects(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        _require(body, "prefix")
        prefix = _string(body, "prefix")
        search = body.get("search") or ""
        if not isinstance(search, str):
            raise errors.validation_error("body/search must be string")
        limit = _integer(body["limit"], "body/limit") if body.get("limit") is not None else 100
        offset = (_integer(body["offset"], "body/offset")
                  if body.get("offset") is not None else 0)
        sort = body.get("sortBy") or {}
        if not isinstance(sort, dict):
            raise errors.validation_error("body/sortBy must be object")
        column = sort.get("column", "name")
        if column not in ("name", "updated_at", "created_at", "last_accessed_at"):
            raise errors.validation_error(
                "body/sortBy/column must be equal to one of the allowed values")
        order = sort.get("order") or "asc"
        if order not in ("asc", "desc"):
            raise errors.validation_error(
                "body/sortBy/order must be equal to one of the allowed values")
        must_be_valid_bucket_name(bucket)
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # Storage treats the prefix as a folder
        async with transaction(self.pool, caller,
                               self._info(request, "storage.object.list")) as tx:
            rows = await tx.all(_search_sql(column, order), {
                "bucket": bucket,
                "pattern": _escape_like(prefix + search) + "%",
                "start": len(prefix.split("/")) if prefix else 1,
                "levels": len((prefix + search).split("/")) if prefix + search else 1,
                "limit": min(max(limit, 0), 1500), "offset": max(offset, 0),
            })
        return JSONResponse([{
            "name": row["name"], "id": None if row["id"] is None else str(row["id"]),
            "updated_at": iso(row["updated_at"]), "created_at": iso(row["created_at"]),
            "last_accessed_at": iso(row["last_accessed_at"]), "metadata": row["metadata"],
        } for row in rows])

    # --- signed URLs --------------------------------------------------------------------
    async def sign_url(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        body = await json_body(request)
        _require(body, "expiresIn")
        expires_in = _integer(body["expiresIn"], "body/expiresIn", 1)
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.object.sign")) as tx:
            await _find_object(tx, bucket, name)
        url = f"{bucket}/{name}"
        token = sign_url_token(self.config.jwt_secret, {"url": url, "scope": SCOPE_DOWNLOAD},
                               expires_in)
        return JSONResponse({"signedURL": f"/object/sign/{url}?token={token}"})

    async def sign_urls(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        _require(body, "expiresIn", "paths")
        expires_in = _integer(body["expiresIn"], "body/expiresIn", 1)
        paths = body["paths"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise errors.validation_error("body/paths must be array")
        if not paths:
            raise errors.validation_error("body/paths must NOT have fewer than 1 items")
        if len(paths) > MAX_OBJECTS_PER_REQUEST:
            raise errors.validation_error(
                f"body/paths must NOT have more than {MAX_OBJECTS_PER_REQUEST} items")
        must_be_valid_bucket_name(bucket)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.object.sign_many")) as tx:
            rows = await tx.all("select name from storage.objects where bucket_id = %(b)s "
                                "and name = any(%(names)s::text[])",
                                {"b": bucket, "names": paths})
        visible = {row["name"] for row in rows}
        out = []
        for path in paths:
            if path in visible:
                url = f"{bucket}/{path}"
                token = sign_url_token(self.config.jwt_secret,
                                       {"url": url, "scope": SCOPE_DOWNLOAD}, expires_in)
                out.append({"error": None, "path": path,
                            "signedURL": f"/object/sign/{url}?token={token}"})
            else:
                out.append({"error": "Either the object does not exist or you do not have "
                                     "access to it", "path": path, "signedURL": None})
        return JSONResponse(out)

    async def get_signed_object(self, request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        token = request.query_params.get("token")
        if token is None:
            raise errors.validation_error("querystring must have required property 'token'")
        must_be_valid_bucket_name(bucket)
        payload = verify_url_token(self.config.jwt_secret, token, bucket=bucket, name=name,
                                   scope=SCOPE_DOWNLOAD)
        info = self._info(request, "storage.object.get_signed")

        async def lookup() -> DictRow:
            async with transaction(self.pool, SERVICE, info) as tx:
                return await _find_object(tx, bucket, name)

        expires = email.utils.formatdate(payload["exp"], usegmt=True)
        return await self._stream(request, bucket, name, lookup, expires=expires)

    # --- move, copy, delete -------------------------------------------------------------
    async def move_object(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await json_body(request)
        _require(body, "bucketId", "sourceKey", "destinationKey")
        bucket, source = _string(body, "bucketId"), _string(body, "sourceKey")
        destination = _string(body, "destinationKey")
        dest_bucket = body.get("destinationBucket") or bucket
        if not isinstance(dest_bucket, str):
            raise errors.validation_error("body/destinationBucket must be string")
        for b in (bucket, dest_bucket):
            must_be_valid_bucket_name(b)
        must_be_valid_key(destination)
        version = str(uuid.uuid4())
        final = None
        committed = False
        old_version: str | None = None
        owner = caller.sub
        try:
            async with transaction(self.pool, caller,
                                   self._info(request, "storage.object.move")) as tx:
                for b, n in sorted({(bucket, source), (dest_bucket, destination)}):
                    await tx.lock_object(b, n)
                await _find_object(tx, bucket, source)  # visible to the caller?
                if (bucket, source) == (dest_bucket, destination):
                    return JSONResponse({"message": "Successfully moved"})
                await tx.scope(SERVICE)
                current = await _find_object(tx, bucket, source)
                await tx.scope(caller)
                old_version = current["version"]
                row = await tx.one(
                    "update storage.objects set name = %(dn)s, bucket_id = %(db)s, "
                    "version = %(v)s, owner = %(owner)s, owner_id = %(owner_id)s, "
                    "updated_at = now() where bucket_id = %(b)s and name = %(n)s "
                    "returning id",
                    {"dn": destination, "db": dest_bucket, "v": version,
                     "owner": owner if is_uuid(owner) else None, "owner_id": owner,
                     "b": bucket, "n": source})
                if row is None:
                    raise errors.no_such_key()
                final = self.files.object_path(dest_bucket, destination, version)
                # Both keys are locked and the row too (the update): no write can have
                # removed these bytes, so missing ones mean the object has none (404).
                try:
                    self.files.share(
                        self.files.version_path(bucket, source, old_version), final)
                except FileNotFoundError:
                    raise errors.no_such_key() from None
            committed = True
        finally:
            if not committed:
                self.files.discard(final)
        self.files.discard_version(bucket, source, old_version)
        return JSONResponse({"message": "Successfully moved"})

    async def copy_object(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await json_body(request)
        _require(body, "bucketId", "sourceKey", "destinationKey")
        bucket, source = _string(body, "bucketId"), _string(body, "sourceKey")
        destination = _string(body, "destinationKey")
        dest_bucket = body.get("destinationBucket") or bucket
        if not isinstance(dest_bucket, str):
            raise errors.validation_error("body/destinationBucket must be string")
        for b in (bucket, dest_bucket):
            must_be_valid_bucket_name(b)
        must_be_valid_key(destination)
        upsert = request.headers.get("x-upsert") == "true"
        copy_metadata = body.get("copyMetadata", True) is not False
        version = str(uuid.uuid4())
        final = None
        committed = False
        previous: str | None = None
        owner = caller.sub
        try:
            async with transaction(self.pool, caller,
                                   self._info(request, "storage.object.copy")) as tx:
                await tx.lock_object(dest_bucket, destination)
                final = self.files.object_path(dest_bucket, destination, version)
                # Bytes first, then the row: the source's writers do not hold our lock, so
                # its version can be replaced (and its file removed) at any moment; linking
                # from the row just read, re-read when it lost that race, keeps the row's
                # metadata and the linked bytes of one version.
                origin, _ = await _with_current_bytes(
                    lambda: _find_object(tx, bucket, source),
                    lambda found: self.files.share(
                        self.files.version_path(bucket, source, found["version"]), final))
                metadata = dict(origin["metadata"] or {})
                given = body.get("metadata")
                override: dict[str, Any] = given if isinstance(given, dict) else {}
                if not copy_metadata:
                    for key in ("cacheControl", "mimetype"):
                        if key in override:
                            metadata[key] = override[key]
                metadata["lastModified"] = iso(datetime.now(UTC))
                user_metadata = origin["user_metadata"] if copy_metadata else None
                previous = await _current_version(tx, caller, dest_bucket, destination)
                row = await tx.one(
                    (_UPSERT_OBJECT if upsert else _INSERT_OBJECT) + " returning *",
                    _object_params(dest_bucket, destination, owner, metadata,
                                   user_metadata, version))
                if row is None:
                    raise errors.access_denied("new row violates row-level security policy")
            committed = True
        except errors.StorageApiError as exc:
            if exc.code == "ResourceAlreadyExists":
                raise errors.key_already_exists() from None
            raise
        finally:
            if not committed:
                self.files.discard(final)
        if previous and previous != version:
            self.files.discard_version(dest_bucket, destination, previous)
        return JSONResponse({"Id": str(row["id"]), "Key": f"{dest_bucket}/{destination}",
                             **object_json(row)})

    async def delete_object(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.object.delete")) as tx:
            await tx.scope(SERVICE)
            await tx.all("select id from storage.objects where bucket_id = %(b)s and "
                         "name = %(n)s for update", {"b": bucket, "n": name})
            await _find_object(tx, bucket, name)
            await tx.scope(caller)
            row = await tx.one("delete from storage.objects where bucket_id = %(b)s and "
                               "name = %(n)s returning version", {"b": bucket, "n": name})
            if row is None:
                raise errors.access_denied("Access denied")
        # Row first (committed), bytes after: see empty_bucket.
        self.files.discard_version(bucket, name, row["version"])
        return JSONResponse({"message": "Successfully deleted"})

    async def delete_objects(self, request: Request) -> Response:
        caller = self._caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        _require(body, "prefixes")
        prefixes = body["prefixes"]
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            raise errors.validation_error("body/prefixes must be array")
        if not prefixes:
            raise errors.validation_error("body/prefixes must NOT have fewer than 1 items")
        must_be_valid_bucket_name(bucket)
        async with transaction(self.pool, caller,
                               self._info(request, "storage.object.delete_many")) as tx:
            rows = await tx.all("delete from storage.objects where bucket_id = %(b)s and "
                                "name = any(%(names)s::text[]) returning *",
                                {"b": bucket, "names": prefixes})
        # Rows first (committed), bytes after: see empty_bucket.
        await anyio.to_thread.run_sync(
            self.files.discard_versions, bucket, [(r["name"], r["version"]) for r in rows])
        return JSONResponse([object_json(row) for row in rows])


# --- SQL helpers ------------------------------------------------------------------------
def _object_params(bucket: str, name: str, owner: str | None, metadata: dict[str, Any],
                   user_metadata: dict[str, Any] | None, version: str) -> dict[str, Any]:
    return {
        "bucket": bucket, "name": name, "owner": owner if is_uuid(owner) else None,
        "owner_id": owner, "metadata": Jsonb(metadata),
        "user_metadata": None if user_metadata is None else Jsonb(user_metadata),
        "version": version,
    }


async def _find_object(tx: Tx, bucket: str, name: str) -> DictRow:
    row = await tx.one(
        "select id, name, bucket_id, version, metadata, user_metadata, updated_at, created_at "
        "from storage.objects where name = %(n)s and bucket_id = %(b)s limit 1",
        {"n": name, "b": bucket})
    if row is None:
        raise errors.no_such_key()
    return row


async def _with_current_bytes(lookup: Callable[[], Awaitable[DictRow]],
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


async def _current_version(tx: Tx, caller: Caller, bucket: str, name: str) -> str | None:
    """The version a write will replace, read past RLS (Storage reads it as superuser)."""
    await tx.scope(SERVICE)
    row = await tx.one("select version from storage.objects where bucket_id = %(b)s and "
                       "name = %(n)s", {"b": bucket, "n": name})
    await tx.scope(caller)
    return None if row is None else row["version"]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_sql(column: str, order: str) -> str:
    """Storage's `storage.search()` (migration 0063) as one statement: the level below the
    prefix, folders (id null) grouped, names relative to the prefix, case-insensitive."""
    if column == "name":
        order_by = f"lower(sort_key) collate \"C\" {order}"
    else:
        order_by = (f"is_folder desc, case when is_folder then name end {order}, "
                    f"{column} {order}")
    return f"""
with matched as (
  select o.name as full_name, o.id, o.updated_at, o.created_at, o.last_accessed_at,
         o.metadata, string_to_array(o.name, '/') as tokens
  from storage.objects o
  where o.bucket_id = %(bucket)s and lower(o.name) like lower(%(pattern)s) escape '\\'
), items as (
  select array_to_string(tokens[%(start)s:%(levels)s], '/') as name, null::uuid as id,
         null::timestamptz as updated_at, null::timestamptz as created_at,
         null::timestamptz as last_accessed_at, null::jsonb as metadata, true as is_folder,
         min(array_to_string(tokens[1:%(levels)s], '/')) || '/' as sort_key
  from matched where array_length(tokens, 1) > %(levels)s
  group by 1
  union all
  select array_to_string(tokens[%(start)s:%(levels)s], '/'), id, updated_at, created_at,
         last_accessed_at, metadata, false, full_name
  from matched where array_length(tokens, 1) = %(levels)s
)
select name, id, updated_at, created_at, last_accessed_at, metadata from items
order by {order_by}
limit %(limit)s offset %(offset)s
"""


# --- HTTP helpers -----------------------------------------------------------------------
def _endpoint(handler: Handler) -> Handler:
    """Errors become Storage's JSON error bodies; nothing else ever reaches the client."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.StorageApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.http_status)
        except Exception:
            log.exception("storage request failed: %s %s", request.method, request.url.path)
            failure = errors.internal_error()
            return JSONResponse(failure.body(), status_code=failure.http_status)

    return run


async def _route_not_found(request: Request, exc: Exception) -> Response:
    """Storage's JSON body for a path it has no route for (not Starlette's plain text)."""
    failure = errors.route_not_found(request.method, request.url.path)
    return JSONResponse(failure.body(), status_code=failure.http_status)


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


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.ASCII | re.IGNORECASE)


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


def _http_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
