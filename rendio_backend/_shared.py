"""Logic shared by the sync and async facades that does no I/O.

Request fingerprints and idempotency keys, pagination cursors, intervals, Storage
paths, bucket specs and their diff, and the model catalog and its diff. Pure
functions, so they are tested without a stack and both facades stay thin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from .errors import (
    ConfigurationError,
    IdempotencyConflict,
    RendioConnectionError,
    RendioError,
    ServerError,
    ValidationError,
)
from .models import (
    BucketSpec,
    ChangeAction,
    CreditReason,
    JobCreated,
    ProvisionItem,
    SeedItem,
)

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

GENERATE_PATH = "/functions/v1/generate-video"
DEFAULT_SIGNED_URL_SECONDS = 3600
MAX_JOBS_PAGE = 50
# The largest page a caller may ask for (the SQL function get_my_credit_history may
# answer fewer rows than asked; the user client does not rely on its cap).
MAX_HISTORY_PAGE = 100


# --- idempotency ------------------------------------------------------------------------
def canonical_json(value: Any, field: str = "body") -> bytes:
    """`value` as canonical JSON bytes (sorted keys, no whitespace, UTF-8).

    ValidationError naming `field` for anything that is not JSON: NaN or infinite
    floats, lone surrogates, or objects json cannot encode (no `default=str`, so two
    different values never collapse into one string).
    """
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValidationError(f"{field} must be JSON (finite numbers, valid Unicode): {exc}",
                              details={"field": field}) from exc


def request_hash(method: str, path: str, body: Mapping[str, Any]) -> str:
    """The request fingerprint stored with an idempotency key.

    SHA-256 hex of the upper-cased method, the path and `canonical_json(body)`, each
    followed by a newline, so equal requests hash equal however their keys were
    ordered. ValidationError when `body` is not JSON.
    """
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical_json(body)):
        digest.update(part)
        digest.update(b"\n")
    return digest.hexdigest()


def generation_body(model_id: uuid.UUID, prompt: str,
                    settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The canonical body of a video generation request, as request_hash sees it.

    `{"model_id": <lower-case UUID>, "prompt": <prompt>, "settings": <object>}`;
    validated to be JSON (ValidationError otherwise).
    """
    body = {"model_id": str(model_id).lower(), "prompt": prompt,
            "settings": dict(settings or {})}
    canonical_json(body["prompt"], "prompt")
    canonical_json(body["settings"], "settings")
    return body


def idempotency_key(key: uuid.UUID | str | None) -> uuid.UUID:
    """The caller's key as a UUID, or a new one (generated once, before any retry)."""
    if key is None:
        return uuid.uuid4()
    return as_uuid(key, "idempotency_key")


def credit_reason(reason: str) -> str:
    """A valid quota_log reason, or ValidationError."""
    try:
        return CreditReason(reason).value
    except ValueError:
        raise ValidationError(f"unknown credit reason {reason!r}",
                              details={"field": "reason"}) from None


def as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    """`value` as a UUID, or ValidationError naming `field`."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{field} must be a UUID", code="invalid_request",
                              details={"field": field}) from None


# --- retries -----------------------------------------------------------------------------
MAX_RETRIES = 2
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
# ServerErrors that a retry cannot fix: the schema, the answer's shape or the URL is wrong.
_PERMANENT_SERVER_CODES = {"schema_out_of_date", "invalid_response", "unexpected_redirect"}


def should_retry(error: RendioError, retries_done: int, max_retries: int = MAX_RETRIES) -> bool:
    """Whether an idempotent call that failed with `error` should be sent again.

    Only transient failures: connection errors and timeouts, 5xx answers, and an
    idempotency key whose first request is still running (409); at most
    `max_retries` retries.
    """
    if retries_done >= max_retries:
        return False
    if isinstance(error, RendioConnectionError | IdempotencyConflict):
        return True
    return (isinstance(error, ServerError) and error.http_status >= 500
            and error.code not in _PERMANENT_SERVER_CODES)


def backoff_seconds(retry: int) -> float:
    """Capped exponential backoff before retry number `retry` (1, 2, ...), no jitter."""
    return float(min(RETRY_MAX_SECONDS, RETRY_INITIAL_SECONDS * 2 ** max(retry - 1, 0)))


def add_jitter(seconds: float) -> float:
    """A random delay in [seconds / 2, seconds], so retrying clients spread out."""
    return seconds * (0.5 + random.random() / 2)


# --- pagination --------------------------------------------------------------------------
def encode_cursor(values: Mapping[str, Any]) -> str:
    """An opaque, URL-safe cursor."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, keys: Iterable[str]) -> dict[str, Any]:
    """The values of a cursor made by encode_cursor, or ValidationError."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        values = None
    wanted = list(keys)
    if not isinstance(values, dict) or any(key not in values for key in wanted):
        raise ValidationError("invalid cursor", code="invalid_cursor",
                              details={"field": "cursor"})
    return values


def page_limit(limit: int, maximum: int) -> int:
    """`limit` checked to be within 1..maximum."""
    if not 1 <= limit <= maximum:
        raise ValidationError(f"limit must be between 1 and {maximum}",
                              details={"field": "limit"})
    return limit


def job_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The cursor after a job in (created_at, job_id) descending order."""
    return encode_cursor({"c": created_at.isoformat(), "i": str(job_id)})


def job_keyset_filter(cursor: str) -> str:
    """The PostgREST `or` filter selecting jobs strictly after the cursor's job."""
    values = decode_cursor(cursor, ("c", "i"))
    try:
        created = datetime.fromisoformat(str(values["c"])).isoformat()
        job_id = uuid.UUID(str(values["i"]))
    except ValueError:
        raise ValidationError("invalid cursor", code="invalid_cursor",
                              details={"field": "cursor"}) from None
    # Quoted: timestamps contain '.', ':' and '+', reserved in PostgREST logic trees.
    return (f'created_at.lt."{created}",'
            f'and(created_at.eq."{created}",job_id.lt.{job_id})')


def version_cursor(version: int) -> str:
    """The cursor after a ledger row (history is ordered by version, descending)."""
    return encode_cursor({"v": version})


def cursor_version(cursor: str) -> int:
    """The ledger version a history cursor points after."""
    value = decode_cursor(cursor, ("v",))["v"]
    if not isinstance(value, int) or value < 1:
        raise ValidationError("invalid cursor", code="invalid_cursor",
                              details={"field": "cursor"})
    return value


def interval(value: timedelta | float | int, field: str) -> str:
    """A PostgreSQL interval literal for a timedelta or a number of seconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValidationError(f"{field} must not be negative", details={"field": field})
    return f"{seconds:.6f} seconds"


# --- storage paths -----------------------------------------------------------------------
def object_key(bucket: str, stored_path: str) -> str:
    """The key inside `bucket` of a path stored in a job row or given by a caller.

    Rows may hold `{user_id}/{job_id}.mp4` or `videos/{user_id}/{job_id}.mp4`.
    ValidationError for a key storage3 would refuse: `.`/`..` segments (also
    percent-encoded) or invalid percent-encoding.
    """
    path = stored_path.lstrip("/")
    prefix = f"{bucket}/"
    key = path[len(prefix):] if path.startswith(prefix) else path
    try:
        parts = urllib.parse.unquote(key, errors="strict").split("/")
    except UnicodeDecodeError:
        raise ValidationError("the object path has invalid percent-encoding",
                              details={"field": "path"}) from None
    if not key or "." in parts or ".." in parts:
        raise ValidationError("the object path must be a plain key without . or .. segments",
                              details={"field": "path"})
    return key


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
        raise ValidationError(
            f"unsupported image type {content_type!r}; use one of "
            f"{', '.join(sorted(_IMAGE_EXTENSIONS))}",
            code="invalid_mime_type", http_status=415, details={"field": "content_type"})
    stem = name or uuid.uuid4().hex
    if "/" in stem or stem in {"", ".", ".."}:
        raise ValidationError("name must be a plain file name", details={"field": "name"})
    return f"{user_id}/{stem}.{extension}"


# --- buckets -----------------------------------------------------------------------------
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


# --- model catalog -----------------------------------------------------------------------
class CatalogModel(BaseModel):
    """One model of the versioned catalog file (the columns of public.models)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    id: uuid.UUID
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)
    description: str | None = None
    cost_per_generation: int = Field(gt=0)
    provider: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    provider_model_id: str | None = None
    is_featured: bool = False
    is_available: bool = True
    thumbnail_url: str | None = None
    settings_schema: dict[str, Any] = Field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The JSON row to insert or update."""
        return self.model_dump(mode="json")


class Catalog(BaseModel):
    """The catalog file: a version and its models."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str = Field(min_length=1)
    models: list[CatalogModel]


def default_catalog_path() -> Path:
    """Rendio's own catalog, shipped inside the package (works wherever it is installed)."""
    return Path(__file__).resolve().parent / "catalog" / "models.json"


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: default_catalog_path())."""
    location = Path(path) if path is not None else default_catalog_path()
    try:
        catalog = Catalog.model_validate_json(location.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the model catalog {location}: {exc}",
                                 code="catalog_missing") from exc
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"invalid model catalog {location}: {where}: {first['msg']}",
                                 code="catalog_invalid") from exc
    ids = [model.id for model in catalog.models]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"duplicate model ids in {location}", code="catalog_invalid")
    return catalog


def catalog_changes(model: CatalogModel, current: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of an existing row that differ from the catalog entry."""
    wanted = model.row()
    return {name: value for name, value in wanted.items()
            if name != "id" and current.get(name) != value}


def seed_item(model: CatalogModel, current: Mapping[str, Any] | None) -> SeedItem:
    """The action seeding takes for one catalog entry."""
    if current is None:
        return SeedItem(model_id=model.id, name=model.name, action=ChangeAction.CREATED)
    changes = catalog_changes(model, current)
    action = ChangeAction.UPDATED if changes else ChangeAction.UNCHANGED
    return SeedItem(model_id=model.id, name=model.name, action=action,
                    changed_fields=sorted(changes))


# --- responses ---------------------------------------------------------------------------
def rows(data: Any) -> list[dict[str, Any]]:
    """The rows of a PostgREST answer (a list of objects)."""
    if data is None:
        return []
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return data
    if isinstance(data, dict):
        return [data]
    raise ServerError("unexpected answer from PostgREST: rows expected",
                      code="invalid_response")


def count(data: Any, what: str) -> int:
    """An integer a SQL function answered (e.g. how many rows it changed)."""
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    raise ServerError(f"unexpected answer from {what}: an integer expected",
                      code="invalid_response")


def job_created(data: Any, key: uuid.UUID) -> JobCreated:
    """create_video_job's answer (`{response: {...}, replayed, status_code}`) as JobCreated."""
    response = data.get("response") if isinstance(data, dict) else None
    if not isinstance(response, dict):
        raise ServerError("unexpected answer from create_video_job: no response object",
                          code="invalid_response")
    try:
        return JobCreated.model_validate({
            **response, "replayed": data.get("replayed", False),
            "status_code": data.get("status_code", 202), "idempotency_key": key})
    except PydanticValidationError as exc:
        raise ServerError(f"unexpected answer from create_video_job: {exc.errors()[0]['msg']}",
                          code="invalid_response") from exc


def signed_url(answer: Any) -> str:
    """The URL of storage3's create_signed_url answer."""
    url = answer.get("signedURL") if isinstance(answer, dict) else None
    if not isinstance(url, str) or not url:
        raise ServerError("unexpected answer from Storage: no signed URL",
                          code="invalid_response")
    return url


def token_subject(token: str) -> uuid.UUID | None:
    """The `sub` claim of a JWT, read without verifying it (the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return uuid.UUID(str(claims["sub"]))
    except (IndexError, ValueError, KeyError, TypeError):
        return None
