"""`rendio db check` as a library call: what CI runs on a project's migrations."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from .bootstrap import bootstrap
from .connection import connect, with_database
from .errors import DatabaseUnavailable, DbToolsError, MigrationFailed
from .lint import failing
from .lint import lint as run_lint
from .migrations import migrate, status
from .schema import SchemaDumpError, dump_schema

HINT = "Is the stack running? Try `rendio dev up`."


@dataclass
class Step:
    """One line of the check's report."""

    name: str
    ok: bool
    detail: str = ""
    data: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "data": self.data}


def run_check(
    db_url: str,
    superuser_url: str,
    migrations_dir: Path,
    *,
    api_schemas: Sequence[str] | None = None,
    schema_file: Path | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> list[Step]:
    """What CI runs on migrations; returns the steps (all `ok` means the check passed).

    On a scratch database `rendio_check_<random>` created next to `superuser_url`'s and
    bootstrapped like the local stack: migrate (as `db_url`'s role) → migrating again
    applies nothing → the lints find no WARN/ERROR → `schema_file` (if given, normally
    supabase/schema.sql) is regenerated from it, for CI to diff. Then, on `db_url`
    itself: no applied migration was edited. The scratch database is dropped at the end.
    """

    steps: list[Step] = []

    def record(step: Step) -> Step:
        steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    def reason(exc: BaseException) -> str:
        if isinstance(exc, MigrationFailed):
            return exc.report()
        if isinstance(exc, psycopg.Error):
            return str(exc).strip().splitlines()[0]
        return str(exc)

    expected = (DbToolsError, SchemaDumpError, psycopg.Error)
    scratch = f"rendio_check_{secrets.token_hex(4)}"
    role = conninfo_to_dict(db_url)
    scratch_super = with_database(superuser_url, scratch)
    scratch_url = with_database(superuser_url, scratch, user=_str(role.get("user")),
                                password=_str(role.get("password")))
    created = False
    try:
        try:
            with connect(superuser_url) as conn:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(scratch)))
            created = True
            bootstrap(scratch_super)
            record(Step("scratch database", True, f"{scratch} created and bootstrapped"))
        except expected as exc:
            record(Step("scratch database", False, reason(exc)))
        if created and steps[-1].ok:
            current = "migrate"
            try:
                applied = migrate(scratch_url, migrations_dir)
                record(Step(current, True, f"applied {len(applied)} migration(s)"))
                current = "migrate again is a no-op"
                again = migrate(scratch_url, migrations_dir)
                record(Step(current, not again,
                            "nothing to apply" if not again
                            else f"applied {len(again)} more: {again[0].filename}"))
                current = "lint"
                results = run_lint(scratch_url, api_schemas=api_schemas)
                bad = failing(results)
                record(Step(
                    "lint", not bad,
                    f"no WARN/ERROR ({len(results) - len(bad)} INFO)" if not bad
                    else f"{len(bad)} WARN/ERROR finding(s)",
                    [r.to_dict() for r in bad],
                ))
                if schema_file is not None:
                    current = "schema snapshot"
                    record(Step(current, True, _write_snapshot(scratch_super, schema_file)))
            except expected as exc:
                record(Step(current, False, reason(exc)))
        try:
            entries = status(db_url, migrations_dir)
            edited = [e for e in entries if e.state == "changed"]
            record(Step(
                "no applied migration was edited", not edited,
                "target database matches the files" if not edited
                else "edited after apply: " + ", ".join(str(e.filename) for e in edited),
                [e.to_dict() for e in edited],
            ))
        except DatabaseUnavailable as exc:
            record(Step("no applied migration was edited", False, f"{exc}. {HINT}"))
        except expected as exc:
            record(Step("no applied migration was edited", False, reason(exc)))
    finally:
        if created:
            try:
                with connect(superuser_url) as conn:
                    conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(scratch)))
            except expected as exc:
                record(Step("drop scratch database", False, reason(exc)))
    return steps


def _write_snapshot(superuser_url: str, schema_file: Path) -> str:
    snapshot = dump_schema(superuser_url)
    before = schema_file.read_text(encoding="utf-8") if schema_file.is_file() else None
    if before == snapshot:
        return f"{schema_file.name} unchanged"
    schema_file.write_text(snapshot, encoding="utf-8")
    return f"{schema_file.name} {'written' if before is None else 'updated'}: review and commit it"


def _str(value: object) -> str | None:
    return None if value is None else str(value)


