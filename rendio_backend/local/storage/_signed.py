"""Signed URLs: signing download and upload URLs, and serving them
(supabase/storage `src/http/routes/object/{getSignedURL,getSignedURLs,getSignedObject,
getSignedUploadURL,uploadSignedObject}.ts`)."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Any

from psycopg.rows import DictRow
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from . import _errors as errors
from . import _store as store
from ._auth import SCOPE_DOWNLOAD, SCOPE_UPLOAD, SERVICE, sign_url_token, verify_url_token
from ._context import StorageContext
from ._downloads import ObjectDownloads
from ._limits import MAX_OBJECTS_PER_REQUEST, must_be_valid_bucket_name, must_be_valid_key
from ._objects import ObjectEndpoints
from ._params import integer, json_body, require, string_list

UPLOAD_SIGNED_URL_EXPIRES = 7200  # Storage's UPLOAD_SIGNED_URL_EXPIRATION_TIME default
_NOT_VISIBLE = "Either the object does not exist or you do not have access to it"


@dataclass(frozen=True)
class SignedUrlEndpoints:
    """`/object/sign/...` and `/object/upload/sign/...`."""

    context: StorageContext
    # Signed uploads and downloads are the ordinary ones, authorized by the token.
    objects: ObjectEndpoints
    downloads: ObjectDownloads

    async def sign_url(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        body = await json_body(request)
        require(body, "expiresIn")
        expires_in = integer(body["expiresIn"], "body/expiresIn", 1)
        must_be_valid_bucket_name(bucket)
        must_be_valid_key(name)
        async with self.context.transaction(caller, request, "storage.object.sign") as tx:
            await store.find_object(tx, bucket, name)
        return json_response({"signedURL": self._signed_url(bucket, name, expires_in)})

    async def sign_urls(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        require(body, "expiresIn", "paths")
        expires_in = integer(body["expiresIn"], "body/expiresIn", 1)
        paths = string_list(body, "paths")
        if len(paths) > MAX_OBJECTS_PER_REQUEST:
            raise errors.validation_error(
                f"body/paths must NOT have more than {MAX_OBJECTS_PER_REQUEST} items")
        must_be_valid_bucket_name(bucket)
        async with self.context.transaction(caller, request, "storage.object.sign_many") as tx:
            visible = await store.visible_object_names(tx, bucket, paths)
        return json_response([
            {"error": None, "path": path,
             "signedURL": self._signed_url(bucket, path, expires_in)} if path in visible
            else {"error": _NOT_VISIBLE, "path": path, "signedURL": None}
            for path in paths])

    async def get_signed_object(self, request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        payload = self._verified_token(request, bucket, name, SCOPE_DOWNLOAD)

        async def lookup() -> DictRow:
            async with self.context.transaction(SERVICE, request,
                                                "storage.object.get_signed") as tx:
                return await store.find_object(tx, bucket, name)

        expires = email.utils.formatdate(payload["exp"], usegmt=True)
        return await self.downloads.stream(request, bucket, name, lookup, expires=expires)

    async def sign_upload_url(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        must_be_valid_bucket_name(bucket)
        upsert = request.headers.get("x-upsert") == "true"
        content_length = request.headers.get("content-length")
        await self.objects.check_upload(
            caller, request, "storage.object.sign_upload_url", bucket, name,
            upsert=upsert, owner=caller.sub,
            metadata={"mimetype": request.headers.get("content-type"),
                      "contentLength": int(content_length) if content_length and
                      content_length.isdigit() else None})
        url = f"{bucket}/{name}"
        token = sign_url_token(self.context.config.jwt_secret, {
            "owner": caller.sub, "url": url, "upsert": upsert, "scope": SCOPE_UPLOAD,
        }, UPLOAD_SIGNED_URL_EXPIRES)
        return json_response({"url": f"/object/upload/sign/{url}?token={token}",
                              "token": token})

    async def upload_signed_object(self, request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["name"]
        payload = self._verified_token(request, bucket, name, SCOPE_UPLOAD)
        owner = payload.get("owner")
        _, key = await self.objects.upload(
            request, SERVICE, bucket, name, upsert=bool(payload.get("upsert")),
            owner=str(owner) if owner else None, operation="storage.object.upload_signed")
        return json_response({"Key": key})

    def _signed_url(self, bucket: str, name: str, expires_in: int) -> str:
        url = f"{bucket}/{name}"
        token = sign_url_token(self.context.config.jwt_secret,
                               {"url": url, "scope": SCOPE_DOWNLOAD}, expires_in)
        return f"/object/sign/{url}?token={token}"

    def _verified_token(self, request: Request, bucket: str, name: str,
                        scope: str) -> dict[str, Any]:
        """The `token` query parameter's payload, checked for this object and `scope`."""
        token = request.query_params.get("token")
        if token is None:
            raise errors.validation_error("querystring must have required property 'token'")
        must_be_valid_bucket_name(bucket)
        return verify_url_token(self.context.config.jwt_secret, token, bucket=bucket,
                                name=name, scope=scope)
