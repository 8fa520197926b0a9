"""`/bucket`: list, read, create, update, empty and delete buckets
(supabase/storage `src/http/routes/bucket/*.ts`)."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from . import _errors as errors
from . import _store as store
from ._auth import SERVICE
from ._context import StorageContext
from ._limits import EMPTY_BUCKET_MAX, bucket_settings, must_be_valid_bucket_name
from ._params import integer, json_body, require, string


@dataclass(frozen=True)
class BucketEndpoints:
    context: StorageContext

    async def list_buckets(self, request: Request) -> Response:
        caller = self.context.caller(request)
        q = request.query_params
        sort: tuple[str, str] | None = None
        column = q.get("sortColumn")
        if column is not None:
            if column not in ("id", "name", "created_at", "updated_at"):
                raise errors.validation_error(
                    "querystring/sortColumn must be equal to one of the allowed values")
            sort = column, "desc" if q.get("sortOrder", "asc").lower() == "desc" else "asc"
        limit = (integer(q["limit"], "querystring/limit", 1)
                 if q.get("limit") is not None else None)
        offset = (integer(q["offset"], "querystring/offset", 0)
                  if q.get("offset") is not None else None)
        async with self.context.transaction(caller, request, "storage.bucket.list") as tx:
            rows = await store.list_buckets(tx, search=q.get("search") or "", sort=sort,
                                            limit=limit, offset=offset)
        return json_response([store.bucket_json(row) for row in rows])

    async def get_bucket(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        async with self.context.transaction(caller, request, "storage.bucket.get") as tx:
            row = await store.find_bucket(tx, bucket)
        if row is None:
            raise errors.no_such_bucket()
        return json_response(store.bucket_json(row))

    async def create_bucket(self, request: Request) -> Response:
        caller = self.context.caller(request)
        body = await json_body(request)
        require(body, "name")
        name = string(body, "name")
        bucket_id = body.get("id") or name
        if not isinstance(bucket_id, str):
            raise errors.validation_error("body/id must be string")
        if name.strip() != name:
            raise errors.invalid_bucket_name()
        must_be_valid_bucket_name(name)
        settings = bucket_settings(body, self.context.file_size_limit)
        with errors.conflict_as(errors.bucket_already_exists):
            async with self.context.transaction(caller, request, "storage.bucket.create") as tx:
                await store.insert_bucket(tx, bucket_id=bucket_id, name=name, owner=caller.sub,
                                          settings=settings)
        return json_response({"name": name})

    async def update_bucket(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        if not any(k in body for k in ("public", "file_size_limit", "allowed_mime_types")):
            raise errors.validation_error("body must have required property 'public'")
        must_be_valid_bucket_name(bucket)
        settings = bucket_settings(body, self.context.file_size_limit)
        async with self.context.transaction(caller, request, "storage.bucket.update") as tx:
            updated = await store.update_bucket(tx, bucket, settings)
        if not updated:
            raise errors.no_such_bucket()
        return json_response({"message": "Successfully updated"})

    async def empty_bucket(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        await json_body(request, allow_empty=True)
        async with self.context.transaction(caller, request, "storage.bucket.empty") as tx:
            # The caller must see the bucket and its objects (RLS) ...
            if await store.find_bucket(tx, bucket) is None:
                raise errors.no_such_bucket()
            if await store.more_objects_than(tx, bucket, EMPTY_BUCKET_MAX):
                raise errors.unable_to_empty_bucket(
                    "Unable to empty the bucket because it contains too many objects")
            # ... then everything goes, as Storage's admin queue job does, but at once.
            await tx.scope(SERVICE)
            removed = await store.delete_all_objects(tx, bucket)
        # Rows first, bytes after commit: a crash in between leaves unreferenced version
        # files (harmless), never a row without its bytes. Many unlinks: off the loop.
        await anyio.to_thread.run_sync(self.context.files.discard_versions, bucket,
                                       [(r["name"], r["version"]) for r in removed])
        return json_response(
            {"message": "Empty bucket has been queued. Completion may take up to an hour."})

    async def delete_bucket(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        await json_body(request, allow_empty=True)
        async with self.context.transaction(caller, request, "storage.bucket.delete") as tx:
            await tx.scope(SERVICE)
            if await store.find_bucket(tx, bucket, lock=True) is None:
                raise errors.no_such_bucket()
            if await store.more_objects_than(tx, bucket, 0):
                raise errors.bucket_not_empty()
            await tx.scope(caller)
            if not await store.delete_bucket(tx, bucket):
                raise errors.no_such_bucket()
        return json_response({"message": "Successfully deleted"})
