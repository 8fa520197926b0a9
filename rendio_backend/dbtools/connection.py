"""Connections to PostgreSQL for the database tools and the local stack: one helper."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import DatabaseUnavailable


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (URLs and key=value strings alike)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    user = params.get("user") or ""
    secret = ":***" if params.get("password") else ""
    host = params.get("host") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    dbname = params.get("dbname") or ""
    auth = f"{user}{secret}@" if user or secret else ""
    return f"postgresql://{auth}{host}{port}/{dbname}"


def with_database(url: str, dbname: str, **overrides: str | None) -> str:
    """`url` pointed at another database (and optionally other connection parameters)."""
    params: dict[str, object] = dict(conninfo_to_dict(url))
    params["dbname"] = dbname
    params.update({k: v for k, v in overrides.items() if v is not None})
    return make_conninfo(**params)  # type: ignore[arg-type]


def one_line(text: str) -> str:
    """Several lines of a server message folded into one."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def connect(db_url: str, *, timeout: int = 10) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection (use it in `with`); failures become `DatabaseUnavailable`.

    No prepared statements, so it also works through a transaction pooler (Supavisor).
    """
    try:
        return psycopg.connect(db_url, autocommit=True, prepare_threshold=None,
                               connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        # libpq's first line is the reason; the next ones are generic hints.
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        reason = lines[0].rstrip(".") if lines else type(exc).__name__
        raise DatabaseUnavailable(db_url, reason) from exc
    except psycopg.ProgrammingError as exc:  # a malformed URL
        raise DatabaseUnavailable(db_url, one_line(str(exc))) from exc
