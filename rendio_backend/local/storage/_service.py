"""The Storage HTTP API (the subset the official clients use), backed by PostgreSQL + disk.

Routes, bodies, status codes and error bodies follow supabase/storage
`src/http/routes/{bucket,object}/*.ts`; the operations follow `src/storage/{storage,object,
uploader}.ts`. Authorization is PostgreSQL's: each operation runs its statements on
storage.buckets / storage.objects in a transaction scoped as the caller (see `_db`), and
Storage's "superuser" steps run as `service_role`, exactly where Storage uses `asSuperUser`.

The endpoints live by resource: `_buckets`, `_objects` (uploads, listing, move, copy,
delete), `_downloads` (bytes and info) and `_signed` (signed URLs); their SQL lives in
`_store`, and what they share in `_context.StorageContext`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._http import Handler, endpoint, service_path
from ..config import StackConfig
from . import _errors as errors
from ._buckets import BucketEndpoints
from ._context import StorageContext
from ._downloads import ObjectDownloads
from ._limits import DEFAULT_FILE_SIZE_LIMIT
from ._list_v2 import ListV2Endpoint
from ._objects import ObjectEndpoints
from ._signed import SignedUrlEndpoints


class StorageService:
    """The local Storage service: `app` plus `startup()` / `shutdown()` (LocalService)."""

    def __init__(self, config: StackConfig, *, file_size_limit: int = DEFAULT_FILE_SIZE_LIMIT,
                 pool_max_size: int = 10) -> None:
        self.config = config
        self.context = StorageContext(config, file_size_limit=file_size_limit,
                                      pool_max_size=pool_max_size)
        # Fastify has no 405: a known path with another method is not found either.
        self.app = Starlette(routes=self._routes(),
                             exception_handlers={404: _route_not_found,
                                                 405: _route_not_found})

    async def startup(self) -> None:
        """Create the storage directory and open the pool (as supabase_storage_admin)."""
        await self.context.open()

    async def shutdown(self) -> None:
        """Close the pool."""
        await self.context.close()

    def _routes(self) -> list[Route]:
        buckets = BucketEndpoints(self.context)
        objects = ObjectEndpoints(self.context)
        downloads = ObjectDownloads(self.context)
        signed = SignedUrlEndpoints(self.context, objects, downloads)
        listing = ListV2Endpoint(self.context)

        def r(path: str, handler: Handler, methods: list[str]) -> Route:
            # Every failure leaves as Storage's JSON error, never a traceback.
            return Route(path, endpoint(handler, errors.error_response), methods=methods)

        name = "{bucket}/{name:path}"
        return [
            r("/bucket", buckets.list_buckets, ["GET"]),
            r("/bucket", buckets.create_bucket, ["POST"]),
            r("/bucket/{bucket}/empty", buckets.empty_bucket, ["POST"]),
            r("/bucket/{bucket}", buckets.get_bucket, ["GET"]),
            r("/bucket/{bucket}", buckets.update_bucket, ["PUT"]),
            r("/bucket/{bucket}", buckets.delete_bucket, ["DELETE"]),
            r("/object/list/{bucket}", objects.list_objects, ["POST"]),
            r("/object/list-v2/{bucket}", listing.list_objects_v2, ["POST"]),
            r("/object/move", objects.move_object, ["POST"]),
            r("/object/copy", objects.copy_object, ["POST"]),
            r("/object/sign/{bucket}", signed.sign_urls, ["POST"]),
            r(f"/object/sign/{name}", signed.sign_url, ["POST"]),
            r(f"/object/sign/{name}", signed.get_signed_object, ["GET"]),
            r(f"/object/upload/sign/{name}", signed.sign_upload_url, ["POST"]),
            r(f"/object/upload/sign/{name}", signed.upload_signed_object, ["PUT"]),
            r(f"/object/info/public/{name}", downloads.info_public, ["GET"]),
            r(f"/object/info/authenticated/{name}", downloads.info_authenticated, ["GET"]),
            r(f"/object/info/{name}", downloads.info_optional, ["GET"]),
            r(f"/object/public/{name}", downloads.get_public_object, ["GET"]),
            r(f"/object/authenticated/{name}", downloads.get_authenticated_object, ["GET"]),
            r(f"/object/{name}", downloads.get_object, ["GET"]),
            r(f"/object/{name}", objects.create_object, ["POST"]),
            r(f"/object/{name}", objects.update_object, ["PUT"]),
            r(f"/object/{name}", objects.delete_object, ["DELETE"]),
            r("/object/{bucket}", objects.delete_objects, ["DELETE"]),
        ]


async def _route_not_found(request: Request, exc: Exception) -> Response:
    """Storage's JSON body for a path it has no route for (not Starlette's plain text),
    naming the path as Storage sees it behind the gateway, query included."""
    path = service_path(request)
    if request.url.query:
        path = f"{path}?{request.url.query}"
    return errors.error_response(errors.route_not_found(request.method, path), request)
