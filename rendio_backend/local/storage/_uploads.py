"""Reading an upload from the request without holding it in memory.

Like Storage's `fileUploadFromRequest` (supabase/storage `src/storage/uploader.ts`):
`multipart/form-data` takes the first file part, with the fields sent before it
(`cacheControl` -> `max-age=<n>`, `contentType`, `metadata`); any other body is the file
itself, typed by `Content-Type` and cached per `Cache-Control`. The multipart body is
parsed incrementally (python-multipart), so the file part streams straight to disk.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from . import _errors as errors

_MAX_FIELD = 1024 * 1024


@dataclass
class UploadHead:
    """What is known about an upload before its bytes are read."""

    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    declared_length: int | None
    chunks: AsyncIterator[bytes]


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _MultipartReader:
    """Feeds the request stream to python-multipart until the first file part, then
    yields that part's bytes as they arrive."""

    def __init__(self, request: Request, boundary: bytes) -> None:
        self._stream = request.stream().__aiter__()
        self._fields: dict[str, str] = {}
        self._part: _Part | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._file: _Part | None = None
        self._file_done = False
        self._pending: list[bytes] = []
        self._exhausted = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
        })

    # --- parser callbacks --------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._part is not None:
            key = self._header_field.decode("latin-1").lower()
            self._part.headers[key] = self._header_value.decode("latin-1")
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self._part
        if part is None:
            return
        _, options = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if part.filename is not None and self._file is None:
            self._file = part

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part is None:
            return
        if part is self._file:
            if not self._file_done:
                self._pending.append(bytes(data[start:end]))
        elif part.filename is None and len(part.data) < _MAX_FIELD:
            part.data += data[start:end]

    def _on_part_end(self) -> None:
        part = self._part
        if part is not None and part is self._file:
            self._file_done = True
        elif part is not None and part.filename is None and part.name:
            self._fields.setdefault(part.name, part.data.decode("utf-8", "replace"))
        self._part = None

    # --- driving -----------------------------------------------------------------------
    async def _feed(self) -> bool:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._exhausted = True
            self._parser.finalize()
            return False
        if chunk:
            self._parser.write(chunk)
        return True

    async def head(self) -> tuple[_Part, dict[str, str]]:
        """Read until the file part's headers; the fields sent before it come along."""
        while self._file is None:
            if not await self._feed():
                raise errors.no_content_provided()
        return self._file, dict(self._fields)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            while self._pending:
                yield self._pending.pop(0)
            if self._file_done:
                # Drain the rest of the request so the connection stays usable.
                while not self._exhausted:
                    await self._feed()
                return
            if not await self._feed():
                return


async def read_upload(request: Request) -> UploadHead:
    """The upload's type, caching, user metadata and a stream of its bytes."""
    content_type = request.headers.get("content-type")
    declared = _declared_length(request)
    if content_type and content_type.startswith("multipart/form-data"):
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise errors.no_content_provided()
        reader = _MultipartReader(request, boundary)
        try:
            part, fields = await reader.head()
        except errors.StorageApiError:
            raise
        except Exception as exc:  # a malformed body, as Storage: "No content provided"
            raise errors.no_content_provided() from exc
        cache_time = fields.get("cacheControl")
        user_md = fields.get("metadata") or fields.get("userMetadata")
        if user_md is not None and len(user_md.encode()) > _MAX_FIELD:
            raise errors.entity_too_large("user_metadata")
        # busboy (Storage's multipart parser) types a part without Content-Type as text/plain
        mimetype = fields.get("contentType") or part.headers.get("content-type") or "text/plain"
        return UploadHead(
            mimetype=mimetype,
            cache_control=f"max-age={cache_time}" if cache_time else "no-cache",
            user_metadata=_json_object(user_md),
            declared_length=declared,
            chunks=reader.chunks(),
        )
    x_metadata = request.headers.get("x-metadata")
    return UploadHead(
        mimetype=content_type or "application/octet-stream",
        cache_control=request.headers.get("cache-control") or "no-cache",
        user_metadata=parse_user_metadata(x_metadata) if x_metadata else None,
        declared_length=declared,
        chunks=request.stream(),
    )


def parse_user_metadata(value: str) -> dict[str, Any] | None:
    """`x-metadata`: base64 JSON, ignored when malformed (as Storage does)."""
    try:
        return _json_object(base64.b64decode(value).decode())
    except ValueError:
        return None


def _json_object(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _declared_length(request: Request) -> int | None:
    try:
        length = int(request.headers.get("content-length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None
