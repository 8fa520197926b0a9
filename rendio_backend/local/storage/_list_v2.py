"""`POST /object/list-v2/{bucket}`: cursor-paged listing (storage3 `list_v2`, supabase-js
`listV2`), as supabase/storage `src/http/routes/object/listObjectsV2.ts` and
`Storage.listObjectsV2` (`src/storage/object.ts`) answer it.

The body is `{prefix?, limit? (>= 1), cursor?, with_delimiter?, sortBy?: {column: name |
updated_at | created_at, order?}}`; the answer `{hasNext, nextCursor?, nextCursorKey?,
folders, objects}`, at most 1000 entries a page. The cursor is Storage's own: base64 of
`l:<last name>`, `o:<order>`, `c:<column>`, `a:<last time>` lines, and once given it
decides the order and the column.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from psycopg.rows import DictRow
from starlette.requests import Request
from starlette.responses import Response

from .._http import json_response
from . import _errors as errors
from . import _store as store
from ._context import StorageContext
from ._params import integer, json_body

_MAX_KEYS = 1000
_CURSOR_PART = re.compile(r"^(\S):(.*)")
_CURSOR_FIELDS = {"l": "start_after", "o": "order", "c": "column", "a": "after"}
_COLUMNS = ("name", "updated_at", "created_at")


@dataclass(frozen=True)
class ListV2Endpoint:
    context: StorageContext

    async def list_objects_v2(self, request: Request) -> Response:
        caller = self.context.caller(request)
        bucket = request.path_params["bucket"]
        body = await json_body(request)
        prefix = _optional_string(body, "prefix")
        cursor_text = _optional_string(body, "cursor")
        limit = (integer(body["limit"], "body/limit", 1)
                 if body.get("limit") is not None else _MAX_KEYS)
        delimited = body.get("with_delimiter", False)
        if not isinstance(delimited, bool):
            raise errors.validation_error("body/with_delimiter must be boolean")
        column, order = _sort_by(body)
        cursor = _decode_cursor(cursor_text) if cursor_text else None
        if cursor is not None:
            # A cursor keeps the page order it was made with (asc when it says none).
            order = cursor.get("order") or "asc"
            column = cursor.get("column") or column
        limit = min(limit, _MAX_KEYS)
        async with self.context.transaction(caller, request, "storage.object.list_v2") as tx:
            rows = await store.list_objects_v2(
                tx, bucket, prefix=prefix, delimited=delimited,
                start_after=(cursor or {}).get("start_after", ""),
                column=column, order=order if order in ("asc", "desc") else "asc",
                after=(cursor or {}).get("after", ""), limit=limit + 1)
        return json_response(_page(rows, limit, order=order, column=column))


def _optional_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise errors.validation_error(f"body/{name} must be string")
    return value


def _sort_by(body: dict[str, Any]) -> tuple[str | None, str | None]:
    sort = body.get("sortBy")
    if sort is None:
        return None, None
    if not isinstance(sort, dict):
        raise errors.validation_error("body/sortBy must be object")
    if "column" not in sort:
        raise errors.validation_error("body/sortBy must have required property 'column'")
    if sort["column"] not in _COLUMNS:
        raise errors.validation_error(
            "body/sortBy/column must be equal to one of the allowed values")
    order = sort.get("order")
    if order is not None and order not in ("asc", "desc"):
        raise errors.validation_error(
            "body/sortBy/order must be equal to one of the allowed values")
    return str(sort["column"]), order


def _page(rows: list[DictRow], limit: int, *, order: str | None,
          column: str | None) -> dict[str, Any]:
    """Storage's answer: folders (names ending in `/`) apart from objects, and a cursor
    after the last entry when there are more."""
    has_next = len(rows) > limit
    shown = rows[:limit]
    folders: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for row in shown:
        entry = {key: store.iso(value) for key, value in row.items()}
        if row["id"] is None:
            entry["name"] = row["name"] if row["name"].endswith("/") else row["name"] + "/"
            folders.append(entry)
        else:
            entry["id"] = str(row["id"])
            objects.append(entry)
    page: dict[str, Any] = {"hasNext": has_next}
    if has_next:
        last = shown[-1]
        after = last.get(column) if column and column != "name" else None
        page["nextCursor"] = _encode_cursor({
            "start_after": last["name"], "order": order or "", "column": column or "",
            "after": store.iso(after) if after is not None else ""})
        page["nextCursorKey"] = last["name"]
    page["folders"], page["objects"] = folders, objects
    return page


def _encode_cursor(values: dict[str, str]) -> str:
    lines = [f"{short}:{values[name]}" for short, name in _CURSOR_FIELDS.items()
             if values.get(name)]
    return base64.b64encode("\n".join(lines).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, str]:
    """The cursor's fields, or Storage's InvalidParameter for anything else."""
    invalid = errors.StorageApiError(status_code=400, code="InvalidParameter",
                                     message="Invalid Parameter continuation token")
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    values: dict[str, str] = {}
    for part in text.split("\n"):
        match = _CURSOR_PART.match(part)
        if match is None or match.group(1) not in _CURSOR_FIELDS:
            raise invalid
        values[_CURSOR_FIELDS[match.group(1)]] = match.group(2)
    return values
