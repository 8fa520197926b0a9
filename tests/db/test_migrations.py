"""The migration runner and `rendio db migrate/status/new/reset/check`, on real PostgreSQL.

Each test that writes gets its own scratch database on the session stack's server,
bootstrapped like the stack, and migrates it as `postgres` (not a superuser), the way
hosted Supabase runs migrations.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendio_backend.dbtools.check import run_check
from rendio_backend.dbtools.connection import redact_url
from rendio_backend.dbtools.errors import (
    DatabaseUnavailable,
    MigrationFailed,
    MigrationFileError,
    MigrationOrderError,
)
from rendio_backend.dbtools.migrations import migrate, new_migration, seed, status
from rendio_cli.db import app
from tests.support.stack import RunningStack, ScratchDb
from tests.unit.test_sqlsplit import FUNCTION_SQL

runner = CliRunner()


def write(directory: Path, filename: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(text)
    return path


# --- migrate ------------------------------------------------------------------------


def test_applies_in_order_then_second_run_is_a_noop(db: ScratchDb, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000002_add_b.sql", "alter table public.a add column b text;")
    write(mdir, "20260101000001_create_a.sql",
          "create table public.a (id int primary key);\n-- trailing note\n")
    write(mdir, "README.md", "not a migration")
    write(mdir, "20260101000003_functions.sql", FUNCTION_SQL)

    applied = migrate(db.url, mdir)
    assert [m.version for m in applied] == ["20260101000001", "20260101000002",
                                            "20260101000003"]
    assert migrate(db.url, mdir) == []
    assert db.query("select public.add_one(1), public.twice(4)") == [(2, 8)]
    # Ran as postgres, not as a superuser.
    assert db.query("select tableowner from pg_tables where tablename = 'a'") == [("postgres",)]


def test_history_rows_match_the_supabase_cli(db: ScratchDb, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000001_create_a.sql",
          "-- create a\ncreate table public.a (id int primary key);\n\ninsert into public.a "
          "values (1);\n-- end\n")
    migrate(db.url, mdir)
    rows = db.query("select version, name, statements from "
                    "supabase_migrations.schema_migrations")
    assert rows == [("20260101000001", "create_a",
                     ["-- create a\ncreate table public.a (id int primary key)",
                      "insert into public.a values (1)", "-- end"])]
    columns = db.query(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = 'supabase_migrations' and table_name = 'schema_migrations' "
        "order by ordinal_position")
    assert columns == [("version", "text", "NO"), ("statements", "ARRAY", "YES"),
                       ("name", "text", "YES")]
    assert db.query("select a.attname from pg_index i join pg_attribute a on "
                    "a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = "
                    "'supabase_migrations.schema_migrations'::regclass and i.indisprimary") \
        == [("version",)]


def test_failing_migration_leaves_nothing_and_names_the_statement(
    db: ScratchDb, tmp_path: Path
) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000001_ok.sql", "create table public.ok (id int primary key);")
    write(mdir, "20260101000002_broken.sql",
          "create table public.half (id int primary key);\n"
          "insert into public.half values (1);\n"
          "select * from public.no_such_table;\n"
          "create table public.never (id int);\n")
    with pytest.raises(MigrationFailed) as info:
        migrate(db.url, mdir)
    failure = info.value
    assert failure.path.name == "20260101000002_broken.sql"
    assert failure.statement_index == 2
    assert failure.sqlstate == "42P01"
    assert 'relation "public.no_such_table" does not exist' in failure.pg_message
    assert "20260101000002_broken.sql" in str(failure)
    assert "At statement: 2" in failure.report()
    assert failure.report().endswith("^")
    # The first file stays applied; nothing of the second one exists.
    assert db.query("select version from supabase_migrations.schema_migrations") \
        == [("20260101000001",)]
    assert db.query("select to_regclass('public.half'), to_regclass('public.never')") \
        == [(None, None)]

    result = runner.invoke(app, ["migrate", "--db-url", db.url, "--migrations-dir", str(mdir)])
    assert result.exit_code == 1
    assert "20260101000002_broken.sql failed at statement 2" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_out_of_order_and_missing_local_are_refused(db: ScratchDb, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000002_second.sql", "create table public.second (id int);")
    migrate(db.url, mdir)
    write(mdir, "20260101000001_first.sql", "create table public.first (id int);")
    with pytest.raises(MigrationOrderError) as info:
        migrate(db.url, mdir)
    assert "20260101000001_first.sql" in str(info.value)
    assert db.query("select to_regclass('public.first')") == [(None,)]

    assert [m.version for m in migrate(db.url, mdir, include_all=True)] == ["20260101000001"]

    (mdir / "20260101000002_second.sql").unlink()
    with pytest.raises(MigrationOrderError) as missing:
        migrate(db.url, mdir)
    assert missing.value.versions == ("20260101000002",)


def test_status_detects_an_edited_migration(db: ScratchDb, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    first = write(mdir, "20260101000001_a.sql", "create table public.a (id int);")
    migrate(db.url, mdir)
    write(mdir, "20260101000002_b.sql", "create table public.b (id int);")
    assert [(e.version, e.state) for e in status(db.url, mdir)] == [
        ("20260101000001", "applied"), ("20260101000002", "pending")]

    result = runner.invoke(app, ["status", "--db-url", db.url, "--migrations-dir", str(mdir),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert [e["state"] for e in json.loads(result.stdout)] == ["applied", "pending"]

    first.write_text("create table public.a (id bigint);")
    assert status(db.url, mdir)[0].state == "changed"
    result = runner.invoke(app, ["status", "--db-url", db.url, "--migrations-dir", str(mdir)])
    assert result.exit_code == 1
    assert "20260101000001 is changed" in result.stderr


def test_new_creates_a_timestamped_file(tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    result = runner.invoke(app, ["new", "add_widgets", "--migrations-dir", str(mdir)])
    assert result.exit_code == 0, result.output
    created = Path(result.stdout.strip())
    assert created.parent == mdir and created.read_text() == ""
    assert created.name[:14].isdigit() and created.name[14:] == "_add_widgets.sql"

    for bad in ("AddWidgets", "add-widgets", "1_add", "add__widgets", ""):
        result = runner.invoke(app, ["new", bad, "--migrations-dir", str(mdir)])
        assert result.exit_code == 1, bad
        assert "lower snake case" in result.stderr
    with pytest.raises(MigrationFileError):
        new_migration("x", mdir, now=__import__("datetime").datetime(2026, 1, 1))
        new_migration("y", mdir, now=__import__("datetime").datetime(2026, 1, 1))


def test_connection_errors_are_one_red_line(tmp_path: Path) -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/postgres"
    with pytest.raises(DatabaseUnavailable):
        migrate(url, tmp_path)
    for command in (["migrate"], ["status"], ["lint"]):
        result = runner.invoke(app, [*command, "--db-url", url])
        assert result.exit_code == 1, command
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "cannot connect to PostgreSQL at postgresql://postgres:***@127.0.0.1:1/postgres" \
            in lines[0]
        assert "rendio dev up" in lines[0]
        assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert redact_url("host=db user=u password=p dbname=x") == "postgresql://u:***@db/x"


def test_migrate_json_and_seed(db: ScratchDb, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000001_a.sql", "create table public.a (id int primary key);")
    result = runner.invoke(app, ["migrate", "--db-url", db.url, "--migrations-dir", str(mdir),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"version": "20260101000001", "name": "a", "file": "20260101000001_a.sql"}]

    seed_file = write(tmp_path, "seed.sql", "insert into public.a values (1), (2);")
    assert seed(db.url, seed_file, record_as="supabase/seed.sql") is True
    assert seed(db.url, seed_file, record_as="supabase/seed.sql") is False
    assert db.query("select count(*) from public.a") == [(2,)]
    assert db.query("select path from supabase_migrations.seed_files") \
        == [("supabase/seed.sql",)]


def test_reset_rebuilds_migrates_and_seeds(
    stack: RunningStack, db: ScratchDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000001_a.sql", "create table public.a (id int primary key);")
    seed_file = write(tmp_path, "seed.sql", "insert into public.a values (7);")
    db.query("create table public.leftover (id int)")
    # Point the stack configuration at the scratch database so only it is reset.
    monkeypatch.setenv("RENDIO_DB_URL", db.superuser_url)
    monkeypatch.setenv("RENDIO_STATE_DIR", str(tmp_path / "state"))
    result = runner.invoke(app, ["reset", "--yes", "--db-url", db.url, "--migrations-dir",
                                 str(mdir), "--seed-file", str(seed_file)])
    assert result.exit_code == 0, result.output
    assert db.query("select to_regclass('public.leftover'), (select array_agg(id) "
                    "from public.a)") == [(None, [7])]


# --- check --------------------------------------------------------------------------


GOOD_SCHEMA = """\
create table public.notes (
  id bigint generated always as identity primary key,
  owner uuid not null default auth.uid(),
  body text not null
);
alter table public.notes enable row level security;
grant select, insert on public.notes to authenticated;
create policy "read own notes" on public.notes for select to authenticated
  using (owner = (select auth.uid()));
create policy "write own notes" on public.notes for insert to authenticated
  with check (owner = (select auth.uid()));
"""


def test_check_passes_then_catches_edits_and_lints(
    stack: RunningStack, db: ScratchDb, tmp_path: Path
) -> None:
    mdir = tmp_path / "migrations"
    first = write(mdir, "20260101000001_notes.sql", GOOD_SCHEMA)
    migrate(db.url, mdir)  # the target database already has the history
    args = ["check", "--db-url", db.url, "--superuser-url", stack.config.superuser_db_url,
            "--migrations-dir", str(mdir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + result.stderr
    assert [line[0] for line in result.stdout.strip().splitlines()] == ["✓"] * 6
    # The snapshot beside the migrations folder is regenerated, then left alone.
    snapshot = (tmp_path / "schema.sql").read_text()
    assert "CREATE TABLE public.notes" in snapshot and "schema.sql written" in result.stdout
    again = runner.invoke(app, args)
    assert "schema.sql unchanged" in again.stdout
    assert (tmp_path / "schema.sql").read_text() == snapshot

    # An applied migration edited afterwards: the target database catches it.
    first.write_text(GOOD_SCHEMA + "\ncomment on table public.notes is 'edited';\n")
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_name = {s["name"]: s for s in report["steps"]}
    assert by_name["migrate"]["ok"] and by_name["lint"]["ok"]
    assert not by_name["no applied migration was edited"]["ok"]
    assert "20260101000001_notes.sql" in by_name["no applied migration was edited"]["detail"]

    # A new migration with a table outside RLS fails the lint step.
    first.write_text(GOOD_SCHEMA)
    write(mdir, "20260101000002_open.sql",
          "create table public.open (id int primary key);\n"
          "grant select on public.open to anon;\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "✗ lint" in result.stdout and "rls_disabled_in_public" in result.stdout
    # No scratch database is left behind.
    assert db.query("select datname from pg_database where datname like 'rendio_check_%'") == []


def test_check_reports_a_failing_migration(
    stack: RunningStack, db: ScratchDb, tmp_path: Path
) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000001_bad.sql", "create table public.t (id int);\nselect 1/0;\n")
    steps = run_check(db.url, stack.config.superuser_db_url, mdir)
    by_name = {s.name: s for s in steps}
    assert by_name["scratch database"].ok
    assert not by_name["migrate"].ok
    assert "At statement: 1" in by_name["migrate"].detail
    assert "division by zero" in by_name["migrate"].detail
    assert "lint" not in by_name


def test_concurrent_runners_apply_each_file_once(db: ScratchDb, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    write(mdir, "20260101000001_slow.sql",
          "create table public.slow (id int);\nselect pg_sleep(0.3);\n")
    results: list[object] = []

    def run() -> None:
        try:
            results.append(len(migrate(db.url, mdir)))
        except Exception as exc:  # collected for the assertion below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == [0, 1]


def test_reset_asks_before_dropping_a_remote_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RENDIO_DB_URL", "postgresql://postgres:pw@db.example.invalid/postgres")
    monkeypatch.setenv("RENDIO_STATE_DIR", str(tmp_path))
    result = runner.invoke(app, ["reset", "--yes"], input="n\n")
    assert result.exit_code == 1
    assert "Reset postgresql://postgres:***@db.example.invalid/postgres?" in result.stderr
    assert "not confirmed: the answer must be db.example.invalid" in result.stderr
