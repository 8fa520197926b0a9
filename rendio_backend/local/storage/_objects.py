"""`/object`: upload, list, move, copy and delete objects
(supabase/storage `src/http/routes/object/*.ts`, `src/storage/{object,uploader}.ts`).

Bytes and rows stay in step (see `_files`): new bytes get a fresh version path, placed
inside the transaction that writes the row, and the version a write replaced is removed
only after the commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from . import _errors as errors
from . import _store as store
from ._auth import SERVICE, Caller
from ._context import StorageContext, request_info
from ._downloads import with_current_bytes
from ._limits import (
    is_empty_folder,
    must_be_valid_bucket_name,
    must_be_valid_key,
    validate_upload_mime_type,
)
from ._params import integer, json_body, require, string, string_list
from ._uploads import read_upload


@dataclass(frozen=True)
class ObjectEndpoints:
    context: StorageContext

    # --- uploads ------------------------------------------------------------------------
    async def create_object(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        upsert = request.headers.get("x-upsert") == "true"
        obj_id, key = await self.upload(request, caller, bucket, name, upsert=upsert,
                                        owner=caller.sub, operation="storage.object.upload")
        return json_response({"Id": obj_id, "Key": key})

    async def update_object(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        obj_id, key = await self.upload(request, caller, bucket, name, upsert=True,
                                        owner=caller.sub,
                                        operation="storage.object.upload_update")
        return json_response({"Id": obj_id, "Key": key})

    async def check_upload(self, caller: Caller, request: Request, operation: str,
                           bucket: str, name: str, *, upsert: bool, owner: str | None,
                           metadata: dict[str, Any]) -> None:
        """Would RLS let `caller` write this row? Checked before any byte is read."""
        must_be_valid_key(name)
        values = store.object_values(bucket, name, owner, metadata, None, "1")
        with errors.conflict_as(errors.key_already_exists):
            await store.check_object_write(self.context.pool, caller,
                                           request_info(request, operation), values,
                                           upsert=upsert)

    async def upload(self, request: Request, writer: Caller, bucket: str, name: str, *,
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
        files = self.context.files
        async with self.context.transaction(SERVICE, request, operation) as tx:
            found = await store.find_bucket(tx, bucket)
        if found is None:
            raise errors.no_such_bucket()
        max_size = self.context.file_size_limit
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
        await self.check_upload(writer, request, operation, bucket, name, upsert=upsert,
                                owner=owner,
                                metadata={"mimetype": head.mimetype,
                                          "contentLength": head.declared_length})

        tmp = await files.receive(head.chunks, max_size)
        previous: str | None = None
        version = str(uuid.uuid4())
        with files.uncommitted() as written:
            written.append(tmp.path)
            if tmp.truncated:
                raise errors.entity_too_large()
            now = datetime.now(UTC)
            metadata = {
                "eTag": f'"{tmp.md5}"', "size": tmp.size, "mimetype": head.mimetype,
                "cacheControl": head.cache_control, "lastModified": store.iso(now),
                "contentLength": tmp.size, "httpStatusCode": 200,
            }
            final = files.object_path(bucket, name, version)
            written.append(final)
            values = store.object_values(bucket, name, owner, metadata,
                                         head.user_metadata or {}, version)
            with errors.conflict_as(errors.key_already_exists):
                async with self.context.transaction(writer, request, operation) as tx:
                    await tx.lock_object(bucket, name)
                    previous = await store.current_version(tx, writer, bucket, name)
                    row = await store.write_object(tx, values, upsert=upsert, returning="id")
                    if row is None:
                        raise errors.access_denied(
                            "new row violates row-level security policy")
                    files.place(tmp.path, final)
        if previous and previous != version:
            files.discard_version(bucket, name, previous)
        return str(row["id"]), f"{bucket}/{name}"

    # --- listing ------------------------------------------------------------------------
    async def list_objects(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        require(body, "prefix")
        prefix = string(body, "prefix")
        search = body.get("search") or ""
        if not isinstance(search, str):
            raise errors.validation_error("body/search must be string")
        # Storage's schema: `limit` >= 1 (0 is refused, not an empty page), `offset` >= 0.
        limit = (integer(body["limit"], "body/limit", 1)
                 if body.get("limit") is not None else 100)
        offset = (integer(body["offset"], "body/offset", 0)
                  if body.get("offset") is not None else 0)
        sort = body.get("sortBy") or {"column": "name"}
        if not isinstance(sort, dict):
            raise errors.validation_error("body/sortBy must be object")
        if "column" not in sort:
            raise errors.validation_error("body/sortBy must have required property 'column'")
        column = sort["column"]
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
        async with self.context.transaction(caller, request, "storage.object.list") as tx:
            rows = await store.search_objects(tx, bucket, prefix=prefix, search=search,
                                              column=column, order=order, limit=limit,
                                              offset=offset)
        return json_response([store.listed_object_json(row) for row in rows])

    # --- move, copy, delete -------------------------------------------------------------
    async def move_object(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket, source, dest_bucket, destination = _transfer_keys(await json_body(request))
        files = self.context.files
        version = str(uuid.uuid4())
        old_version: str | None = None
        with files.uncommitted() as written:
            async with self.context.transaction(caller, request, "storage.object.move") as tx:
                for b, n in sorted({(bucket, source), (dest_bucket, destination)}):
                    await tx.lock_object(b, n)
                await store.find_object(tx, bucket, source)  # visible to the caller?
                if (bucket, source) == (dest_bucket, destination):
                    return json_response({"message": "Successfully moved"})
                await tx.scope(SERVICE)
                current = await store.find_object(tx, bucket, source)
                await tx.scope(caller)
                old_version = current["version"]
                moved = await store.move_object(tx, bucket, source, to_bucket=dest_bucket,
                                                to_name=destination, version=version,
                                                owner=caller.sub)
                if moved is None:
                    raise errors.no_such_key()
                final = files.object_path(dest_bucket, destination, version)
                written.append(final)
                # Both keys are locked and the row too (the update): no write can have
                # removed these bytes, so missing ones mean the object has none (404).
                try:
                    files.share(files.version_path(bucket, source, old_version), final)
                except FileNotFoundError:
                    raise errors.no_such_key() from None
        files.discard_version(bucket, source, old_version)
        return json_response({"message": "Successfully moved"})

    async def copy_object(self, request: Request) -> Response:
        caller = self.context.caller(request)
        body = await json_body(request)
        bucket, source, dest_bucket, destination = _transfer_keys(body)
        upsert = request.headers.get("x-upsert") == "true"
        copy_metadata = body.get("copyMetadata", True) is not False
        files = self.context.files
        version = str(uuid.uuid4())
        previous: str | None = None
        with errors.conflict_as(errors.key_already_exists), files.uncommitted() as written:
            async with self.context.transaction(caller, request, "storage.object.copy") as tx:
                await tx.lock_object(dest_bucket, destination)
                final = files.object_path(dest_bucket, destination, version)
                written.append(final)
                # Bytes first, then the row: the source's writers do not hold our lock, so
                # its version can be replaced (and its file removed) at any moment; linking
                # from the row just read, re-read when it lost that race, keeps the row's
                # metadata and the linked bytes of one version.
                origin, _ = await with_current_bytes(
                    lambda: store.find_object(tx, bucket, source),
                    lambda found: files.share(
                        files.version_path(bucket, source, found["version"]), final))
                metadata = dict(origin["metadata"] or {})
                given = body.get("metadata")
                override: dict[str, Any] = given if isinstance(given, dict) else {}
                if not copy_metadata:
                    for key in ("cacheControl", "mimetype"):
                        if key in override:
                            metadata[key] = override[key]
                metadata["lastModified"] = store.iso(datetime.now(UTC))
                user_metadata = origin["user_metadata"] if copy_metadata else None
                previous = await store.current_version(tx, caller, dest_bucket, destination)
                row = await store.write_object(
                    tx, store.object_values(dest_bucket, destination, caller.sub, metadata,
                                            user_metadata, version),
                    upsert=upsert, returning="*")
                if row is None:
                    raise errors.access_denied("new row violates row-level security policy")
        if previous and previous != version:
            files.discard_version(dest_bucket, destination, previous)
        return json_response({"Id": str(row["id"]), "Key": f"{dest_bucket}/{destination}",
                              **store.object_json(row)})

    async def delete_object(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        async with self.context.transaction(caller, request, "storage.object.delete") as tx:
            await tx.scope(SERVICE)
            await store.lock_object_row(tx, bucket, name)
            await store.find_object(tx, bucket, name)
            await tx.scope(caller)
            row = await store.delete_object(tx, bucket, name)
            if row is None:
                raise errors.access_denied("Access denied")
        # Row first (committed), bytes after: see BucketEndpoints.empty_bucket.
        self.context.files.discard_version(bucket, name, row["version"])
        return json_response({"message": "Successfully deleted"})

    async def delete_objects(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        prefixes = string_list(body, "prefixes")
        must_be_valid_bucket_name(bucket)
        async with self.context.transaction(caller, request, "storage.object.delete_many") as tx:
            rows = await store.delete_objects(tx, bucket, prefixes)
        # Rows first (committed), bytes after: see BucketEndpoints.empty_bucket.
        await anyio.to_thread.run_sync(self.context.files.discard_versions, bucket,
                                       [(r["name"], r["version"]) for r in rows])
        return json_response([store.object_json(row) for row in rows])


def _transfer_keys(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """A move's or copy's source bucket and key, and its destination bucket (by default
    the same) and key, checked."""
    require(body, "bucketId", "sourceKey", "destinationKey")
    bucket, source = string(body, "bucketId"), string(body, "sourceKey")
    destination = string(body, "destinationKey")
    dest_bucket = body.get("destinationBucket") or bucket
    if not isinstance(dest_bucket, str):
        raise errors.validation_error("body/destinationBucket must be string")
    for b in (bucket, dest_bucket):
        must_be_valid_bucket_name(b)
    must_be_valid_key(destination)
    return bucket, source, dest_bucket, destination
