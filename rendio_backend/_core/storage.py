"""The app's Storage buckets: their specs, object keys and paths, and the bucket diff."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequest
from ..models import BucketSpec, ChangeAction, ProvisionItem

MB = 1024 * 1024

# The app's buckets: all private; objects live under {user_id}/...
# Sizes: Supabase rejects a bucket limit above the project's global upload limit, which
# is 50 MiB on the free plan, in `supabase start` and in the local stack; an 8 s 1080p
# Veo 3.1 clip is ~10-30 MB, so videos get the full 50 MiB (a Pro project that raised
# its global limit can pass its own BucketSpecs). Thumbnails are single JPEG frames;
# uploads are photos for image-to-video (a 48 MP HEIC/JPEG from an iPhone stays < 20 MiB).
BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec(id="videos", file_size_limit=50 * MB,
               allowed_mime_types=("video/mp4", "video/quicktime")),
    BucketSpec(id="thumbnails", file_size_limit=5 * MB,
               allowed_mime_types=("image/jpeg", "image/png", "image/webp")),
    BucketSpec(id="user_uploads", file_size_limit=20 * MB,
               allowed_mime_types=("image/jpeg", "image/png", "image/webp", "image/heic",
                                   "image/heif")),
)
VIDEOS_BUCKET = "videos"
THUMBNAILS_BUCKET = "thumbnails"
UPLOADS_BUCKET = "user_uploads"
_IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
                     "image/heic": "heic", "image/heif": "heif"}

DEFAULT_SIGNED_URL_SECONDS = 3600


# --- object keys and paths ---------------------------------------------------------------
def object_key(bucket: str, stored_path: str) -> str:
    """The key inside `bucket` of a path stored in a job row or given by a caller.

    Rows may hold `{user_id}/{job_id}.mp4` or `videos/{user_id}/{job_id}.mp4`.
    InvalidRequest for a key storage3 would refuse: `.`/`..` segments (also
    percent-encoded) or invalid percent-encoding.
    """
    path = stored_path.lstrip("/")
    prefix = f"{bucket}/"
    key = path[len(prefix):] if path.startswith(prefix) else path
    try:
        parts = urllib.parse.unquote(key, errors="strict").split("/")
    except UnicodeDecodeError:
        raise InvalidRequest("the object path has invalid percent-encoding",
                             details={"field": "path"}) from None
    if not key or "." in parts or ".." in parts:
        raise InvalidRequest("the object path must be a plain key without . or .. segments",
                             details={"field": "path"})
    return key


# Object keys per Storage removal request (S3, behind hosted Storage, deletes 1000 at once).
REMOVE_BATCH = 1000


def queued_removals(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, list[tuple[int, str]]], list[tuple[int, str]]]:
    """The queued files of archived jobs (rows of pending_storage_removals), by bucket.

    Returns ({bucket: [(queue id, object key)]}, [(queue id, "bucket/path")]): the
    second list holds stored paths Storage cannot address, which nothing can remove.
    """
    by_bucket: dict[str, list[tuple[int, str]]] = {}
    invalid: list[tuple[int, str]] = []
    for row in rows:
        bucket, path, queue_id = str(row["bucket"]), str(row["path"]), int(row["id"])
        try:
            key = object_key(bucket, path)
        except InvalidRequest:
            invalid.append((queue_id, f"{bucket}/{path}"))
            continue
        by_bucket.setdefault(bucket, []).append((queue_id, key))
    return by_bucket, invalid


def video_path(user_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """Where a job's video lives in the videos bucket."""
    return f"{user_id}/{job_id}.mp4"


def thumbnail_path(user_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """Where a job's thumbnail lives in the thumbnails bucket."""
    return f"{user_id}/{job_id}.jpg"


def upload_path(user_id: uuid.UUID, content_type: str, name: str | None = None) -> str:
    """A new object key in user_uploads for an image of `content_type`."""
    extension = _IMAGE_EXTENSIONS.get(content_type.lower())
    if extension is None:
        raise InvalidRequest(
            f"unsupported image type {content_type!r}; use one of "
            f"{', '.join(sorted(_IMAGE_EXTENSIONS))}",
            code="invalid_mime_type", http_status=415, details={"field": "content_type"})
    stem = name or uuid.uuid4().hex
    if "/" in stem or stem in {"", ".", ".."}:
        raise InvalidRequest("name must be a plain file name", details={"field": "name"})
    return f"{user_id}/{stem}.{extension}"


# --- bucket diff -------------------------------------------------------------------------
def bucket_options(spec: BucketSpec) -> dict[str, Any]:
    """storage3's create/update options for a spec."""
    return {"public": spec.public, "file_size_limit": spec.file_size_limit,
            "allowed_mime_types": list(spec.allowed_mime_types)}


def bucket_changes(spec: BucketSpec, current: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The settings of an existing bucket that differ from `spec` ({name: [old, new]})."""
    changes: dict[str, list[Any]] = {}
    if bool(current.get("public")) != spec.public:
        changes["public"] = [current.get("public"), spec.public]
    if current.get("file_size_limit") != spec.file_size_limit:
        changes["file_size_limit"] = [current.get("file_size_limit"), spec.file_size_limit]
    mime = current.get("allowed_mime_types") or []
    if sorted(mime) != sorted(spec.allowed_mime_types):
        changes["allowed_mime_types"] = [list(mime), list(spec.allowed_mime_types)]
    return changes


def bucket_item(spec: BucketSpec, current: Mapping[str, Any] | None) -> ProvisionItem:
    """The action provisioning takes for one bucket."""
    if current is None:
        return ProvisionItem(bucket=spec.id, action=ChangeAction.CREATED)
    changes = bucket_changes(spec, current)
    action = ChangeAction.UPDATED if changes else ChangeAction.UNCHANGED
    return ProvisionItem(bucket=spec.id, action=action, changes=changes)
