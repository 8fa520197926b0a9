"""Rows of `storage.buckets` and `storage.objects`: the SQL the endpoints run, and the
rows' JSON form.

Every function runs on the `Tx` it is given, so the endpoint chooses the scope (the
caller under RLS, or `service_role` where Storage uses `asSuperUser`) and composes the
steps into one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from . import _errors as errors
from ._auth import SERVICE, Caller
from ._db import RequestInfo, Tx, test_permission
from ._limits import is_uuid

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


def listed_object_json(row: DictRow) -> dict[str, Any]:
    """One entry of an object listing (a folder has no id and no metadata)."""
    return {
        "name": row["name"], "id": None if row["id"] is None else str(row["id"]),
        "updated_at": iso(row["updated_at"]), "created_at": iso(row["created_at"]),
        "last_accessed_at": iso(row["last_accessed_at"]), "metadata": row["metadata"],
    }


# --- buckets --------------------------------------------------------------------------
async def list_buckets(tx: Tx, *, search: str, sort: tuple[str, str] | None,
                       limit: int | None, offset: int | None) -> list[DictRow]:
    """The buckets visible to the scope; `sort` is a checked (column, asc|desc)."""
    sql = f"select {_BUCKET_COLUMNS}, type from storage.buckets"
    params: dict[str, Any] = {}
    if search:
        sql += " where name ilike %(search)s"
        params["search"] = "%" + escape_like(search) + "%"
    if sort is not None:
        column, order = sort
        sql += f' order by "{column}" {order}'
    if limit is not None:
        sql += " limit %(limit)s"
        params["limit"] = limit
    if offset is not None:
        sql += " offset %(offset)s"
        params["offset"] = offset
    return await tx.all(sql, params)


async def find_bucket(tx: Tx, bucket_id: str, *, lock: bool = False) -> DictRow | None:
    suffix = " for update" if lock else ""
    return await tx.one(f"select {_BUCKET_COLUMNS} from storage.buckets "
                        f"where id = %(id)s limit 1{suffix}", {"id": bucket_id})


async def insert_bucket(tx: Tx, *, bucket_id: str, name: str, owner: str | None,
                        settings: dict[str, Any]) -> None:
    """`settings`: `public`, `file_size_limit`, `allowed_mime_types`, as far as given."""
    await tx.all(
        "insert into storage.buckets (id, name, owner, owner_id, public, "
        "file_size_limit, allowed_mime_types) values (%(id)s, %(name)s, "
        "%(owner)s, %(owner_id)s, %(public)s, %(file_size_limit)s, "
        "%(allowed_mime_types)s)", {
            "id": bucket_id, "name": name, "owner": owner if is_uuid(owner) else None,
            "owner_id": owner, "public": settings.get("public", False),
            "file_size_limit": settings.get("file_size_limit"),
            "allowed_mime_types": settings.get("allowed_mime_types"),
        })


async def update_bucket(tx: Tx, bucket_id: str, settings: dict[str, Any]) -> bool:
    """Set the given columns; False when no bucket (visible to the scope) was updated."""
    assignments = ", ".join(f"{column} = %({column})s" for column in settings)
    row = await tx.one(f"update storage.buckets set {assignments} "
                       "where id = %(bucket_id)s returning id",
                       {**settings, "bucket_id": bucket_id})
    return row is not None


async def delete_bucket(tx: Tx, bucket_id: str) -> bool:
    row = await tx.one("delete from storage.buckets where id = %(b)s returning id",
                       {"b": bucket_id})
    return row is not None


# --- objects --------------------------------------------------------------------------
def object_values(bucket: str, name: str, owner: str | None, metadata: dict[str, Any],
                  user_metadata: dict[str, Any] | None, version: str) -> dict[str, Any]:
    """The parameters of `write_object` (an owner that is no UUID is only `owner_id`)."""
    return {
        "bucket": bucket, "name": name, "owner": owner if is_uuid(owner) else None,
        "owner_id": owner, "metadata": Jsonb(metadata),
        "user_metadata": None if user_metadata is None else Jsonb(user_metadata),
        "version": version,
    }


async def write_object(tx: Tx, values: dict[str, Any], *, upsert: bool,
                       returning: Literal["id", "*"]) -> DictRow | None:
    """Insert (or, with `upsert`, replace) an object row; None when RLS hid the result."""
    return await tx.one(
        f"{_UPSERT_OBJECT if upsert else _INSERT_OBJECT} returning {returning}", values)


async def check_object_write(pool: AsyncConnectionPool[Any], caller: Caller,
                             request: RequestInfo, values: dict[str, Any], *,
                             upsert: bool) -> None:
    """Would RLS let `caller` write this row? Tried and rolled back."""
    await test_permission(pool, caller, request,
                          _UPSERT_OBJECT if upsert else _INSERT_OBJECT, values)


async def find_object(tx: Tx, bucket: str, name: str) -> DictRow:
    """The object's row; NoSuchKey when there is none the scope can see."""
    row = await tx.one(
        "select id, name, bucket_id, version, metadata, user_metadata, updated_at, created_at "
        "from storage.objects where name = %(n)s and bucket_id = %(b)s limit 1",
        {"n": name, "b": bucket})
    if row is None:
        raise errors.no_such_key()
    return row


async def current_version(tx: Tx, caller: Caller, bucket: str, name: str) -> str | None:
    """The version a write will replace, read past RLS (Storage reads it as superuser)."""
    await tx.scope(SERVICE)
    row = await tx.one("select version from storage.objects where bucket_id = %(b)s and "
                       "name = %(n)s", {"b": bucket, "n": name})
    await tx.scope(caller)
    return None if row is None else row["version"]


async def lock_object_row(tx: Tx, bucket: str, name: str) -> None:
    await tx.all("select id from storage.objects where bucket_id = %(b)s and "
                 "name = %(n)s for update", {"b": bucket, "n": name})


async def more_objects_than(tx: Tx, bucket: str, count: int) -> bool:
    """Does the bucket hold more than `count` objects (that the scope can see)?"""
    rows = await tx.all("select 1 from storage.objects where bucket_id = %(b)s "
                        "limit %(n)s", {"b": bucket, "n": count + 1})
    return len(rows) > count


async def visible_object_names(tx: Tx, bucket: str, names: list[str]) -> set[str]:
    rows = await tx.all("select name from storage.objects where bucket_id = %(b)s "
                        "and name = any(%(names)s::text[])", {"b": bucket, "names": names})
    return {row["name"] for row in rows}


async def move_object(tx: Tx, bucket: str, name: str, *, to_bucket: str, to_name: str,
                      version: str, owner: str | None) -> DictRow | None:
    """Rename the row (a new version, owned by the mover); None when none was moved."""
    return await tx.one(
        "update storage.objects set name = %(dn)s, bucket_id = %(db)s, "
        "version = %(v)s, owner = %(owner)s, owner_id = %(owner_id)s, "
        "updated_at = now() where bucket_id = %(b)s and name = %(n)s "
        "returning id",
        {"dn": to_name, "db": to_bucket, "v": version,
         "owner": owner if is_uuid(owner) else None, "owner_id": owner,
         "b": bucket, "n": name})


async def delete_object(tx: Tx, bucket: str, name: str) -> DictRow | None:
    """Delete one row; its `version`, or None when the scope could delete none."""
    return await tx.one("delete from storage.objects where bucket_id = %(b)s and "
                        "name = %(n)s returning version", {"b": bucket, "n": name})


async def delete_objects(tx: Tx, bucket: str, names: list[str]) -> list[DictRow]:
    return await tx.all("delete from storage.objects where bucket_id = %(b)s and "
                        "name = any(%(names)s::text[]) returning *",
                        {"b": bucket, "names": names})


async def delete_all_objects(tx: Tx, bucket: str) -> list[DictRow]:
    return await tx.all("delete from storage.objects where bucket_id = %(b)s "
                        "returning name, version", {"b": bucket})


async def search_objects(tx: Tx, bucket: str, *, prefix: str, search: str, column: str,
                         order: str, limit: int, offset: int) -> list[DictRow]:
    """One level of the bucket below the folder `prefix` (ending in `/`, or empty):
    objects and folders whose names start with `search`."""
    return await tx.all(_search_sql(column, order), {
        "bucket": bucket,
        "pattern": escape_like(prefix + search) + "%",
        "start": len(prefix.split("/")) if prefix else 1,
        "levels": len((prefix + search).split("/")) if prefix + search else 1,
        "limit": min(max(limit, 0), 1500), "offset": max(offset, 0),
    })


def escape_like(value: str) -> str:
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


async def list_objects_v2(tx: Tx, bucket: str, *, prefix: str, delimited: bool,
                          start_after: str, column: str | None, order: str, after: str,
                          limit: int) -> list[DictRow]:
    """A page of Storage's list-v2 (`listObjectsV2` in `src/storage/database/pg.ts`).

    Without a delimiter: every object under `prefix`, by name (or by `created_at` /
    `updated_at`, then name). With one: `storage.search_v2`, the level below `prefix`,
    each folder (`id` null, name without its trailing `/`) in the place of its first
    object by name, or by its oldest object's `created_at` when sorted by time. A page
    starts after the cursor's `start_after` (and `after`, its time, for time sorts).
    """
    direction, before = ("asc", ">") if order == "asc" else ("desc", "<")
    params: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "start": start_after,
                              "after": after, "limit": limit}
    timed = column in ("created_at", "updated_at")
    since = (f"(date_trunc('milliseconds', {column}), name collate \"C\") {before} "
             "(coalesce(nullif(%(after)s, '')::timestamptz, 'epoch'::timestamptz), "
             "%(start)s)")
    if not delimited:
        where = "" if not start_after else (
            f" and {since}" if timed and after else f' and name collate "C" {before} %(start)s')
        by = f"{column} {direction}, " if timed else ""
        return await tx.all(
            "select id, name, metadata, updated_at, created_at, last_accessed_at "
            "from storage.objects where bucket_id = %(bucket)s "
            f"and starts_with(name, %(prefix)s){where} "
            f'order by {by}name collate "C" {direction} limit %(limit)s', params)
    params["levels"] = len(prefix.split("/")) if prefix else 1
    if timed:
        folder_time, where = "min(created_at)", since
        by = (f"coalesce(date_trunc('milliseconds', {column}), 'epoch'::timestamptz) "
              f'{direction}, name collate "C" {direction}')
    else:
        # A folder's place is its common prefix (`dir/`); a cursor naming a folder
        # resumes after everything under it.
        folder_time, where = "null::timestamptz", (
            f'sort_key collate "C" {before} (case when exists (select 1 from '
            "storage.objects where bucket_id = %(bucket)s and starts_with(name, "
            "%(start)s || '/')) then %(start)s || '/' else %(start)s end)")
        by = f'sort_key collate "C" {direction}'
    return await tx.all(f"""
with raw as (
  select name, id, metadata, updated_at, created_at, last_accessed_at,
         case when strpos(substr(name, length(%(prefix)s) + 1), '/') > 0
              then left(name, length(%(prefix)s) + strpos(substr(name, length(%(prefix)s) + 1),
                                                          '/')) end as folder
  from storage.objects
  where bucket_id = %(bucket)s and starts_with(name, %(prefix)s)
), items as (
  select rtrim(folder, '/') as name, null::uuid as id, null::jsonb as metadata,
         {folder_time} as updated_at, {folder_time} as created_at,
         null::timestamptz as last_accessed_at, folder as sort_key
  from raw where folder is not null group by folder
  union all
  select name, id, metadata, updated_at, created_at, last_accessed_at, name
  from raw where folder is null
)
select split_part(name, '/', %(levels)s) as key, name, id, updated_at, created_at,
       last_accessed_at, metadata
from items
where %(start)s = '' or {where}
order by {by}
limit %(limit)s
""", params)
