"""Names, sizes and MIME types accepted by Storage (supabase/storage `src/storage/limits.ts`,
`uploader.ts` `validateMimeType`, `storage.ts` `validateMimeType`)."""

from __future__ import annotations

import re
from typing import Any

from . import _errors as errors

DEFAULT_FILE_SIZE_LIMIT = 50 * 1024 * 1024  # supabase/config.toml `file_size_limit = "50MiB"`
EMPTY_BUCKET_MAX = 200_000
MAX_OBJECTS_PER_REQUEST = 1000

# Hyphen last so it stays a literal.
_VALID_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]*$")
_VALID_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]*$")
_MIME_PATTERN = re.compile(
    r"^([a-zA-Z0-9\-+.]+)/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?$|\*$")
_SIZE_PATTERN = re.compile(r"(^[0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)$", re.IGNORECASE)
_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-5][0-9a-f]{3}-[089ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE)


def must_be_valid_key(key: str) -> None:
    if not key or not _VALID_OBJECT_KEY.match(key):
        raise errors.invalid_key(key)


def must_be_valid_bucket_name(name: str) -> None:
    if not name or len(name) > 100 or not _VALID_BUCKET_NAME.match(name):
        raise errors.invalid_bucket_name()


def is_uuid(value: str | None) -> bool:
    return bool(value) and bool(_UUID.match(value or ""))


def is_empty_folder(name: str) -> bool:
    return name.endswith(".emptyFolderPlaceholder")


def validate_bucket_mime_types(types: list[str]) -> None:
    """The allow-list given when creating/updating a bucket."""
    for mime in types:
        if len(mime) > 1000 or not _MIME_PATTERN.search(mime):
            raise errors.invalid_mime_type(mime)


def validate_upload_mime_type(mime: str, allowed: list[str]) -> None:
    """An upload's content type against a bucket's allow-list (`type/*` wildcards).

    Like Storage, the comparison is on the raw `type/subtype` split, so parameters such as
    `;charset=UTF-8` are part of the subtype.
    """
    parts = mime.split("/")
    if len(parts) < 2:
        raise errors.invalid_mime_type(mime)
    kind, ext = parts[0], parts[1]
    for entry in allowed:
        allowed_parts = entry.split("/")
        if len(allowed_parts) < 2:
            continue
        if allowed_parts[0] == kind and allowed_parts[1] in ("*", ext):
            return
    raise errors.invalid_mime_type(mime)


def parse_file_size(value: int | str, global_limit: int) -> int:
    """A bucket's `file_size_limit` (bytes, or "20MB"-style) checked against the global one."""
    if isinstance(value, str):
        match = _SIZE_PATTERN.match(value)
        if not match:
            raise errors.invalid_file_size_limit()
        number = float(f"{float(match.group(1)):.3g}")
        factor = {"GB": 10**9, "MB": 10**6, "KB": 1000, "B": 1}[match.group(2).upper()]
        value = int(number * factor)
    if value > global_limit:
        raise errors.entity_too_large()
    return value


def bucket_settings(body: dict[str, Any], global_limit: int) -> dict[str, Any]:
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
            settings["file_size_limit"] = parse_file_size(limit, global_limit)
    if "allowed_mime_types" in body:
        types = body["allowed_mime_types"]
        if types is not None:
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise errors.validation_error("body/allowed_mime_types must be array")
            types = [t for t in types if t]
            validate_bucket_mime_types(types)
        settings["allowed_mime_types"] = types
    return settings
