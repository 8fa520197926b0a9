"""The installed `rendio` console script, run as a subprocess from outside the repository.

These are the bugs a new user met with the wheel in a project folder of their own:
usage errors reported as internal errors, a reset that dropped the wrong database, and
the catalog and migrations looked for inside the checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from rendio_backend.local._proc import free_port
from tests.support.stack import MIGRATIONS, RunningStack, ScratchDb, stack_dir

RENDIO = str(Path(sys.executable).parent / "rendio")


def rendio(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RENDIO_")}
    environ.update(env or {})
    return subprocess.run([RENDIO, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=timeout, input=input)


def test_the_console_script_is_installed() -> None:
    assert Path(RENDIO).is_file(), "install the package: pip install -e ."


@pytest.mark.parametrize("args", [
    ["no-such-command"], [], ["db", "new"], ["dev", "up", "--no-such-option"],
    ["dev", "status", "-o", "yaml"], ["--workdir", "/no/such/folder", "dev", "status"],
])
def test_usage_errors_print_usage_and_exit_2(args: list[str], tmp_path: Path) -> None:
    result = rendio(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Usage: rendio" in result.stdout + result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_version_and_help(tmp_path: Path) -> None:
    version = rendio("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("rendio "), version.stderr
    help_text = rendio("db", "migrate", "--help", cwd=tmp_path)
    assert help_text.returncode == 0
    assert "<bool>" not in help_text.stdout and "<str>" not in help_text.stdout
    assert "env var: RENDIO_DB_URL" in help_text.stdout


def test_answering_no_aborts_with_exit_1(tmp_path: Path) -> None:
    result = rendio("db", "reset", "--db-url", "postgresql://postgres@127.0.0.1:1/x",
                    cwd=tmp_path, input="n\n")
    assert result.returncode == 1
    assert "Aborted" in result.stderr and "unexpected" not in result.stderr


def test_a_remote_reset_needs_the_host_named(tmp_path: Path) -> None:
    url = "postgresql://postgres:secret@db.example.invalid:5432/postgres"
    wrong = rendio("db", "reset", "--yes", "--db-url", url, cwd=tmp_path, input="y\n")
    assert wrong.returncode == 1 and "db.example.invalid" in wrong.stderr
    assert "secret" not in wrong.stderr  # the password is never echoed
    mismatch = rendio("db", "reset", "--db-url", url, "--confirm-host", "other.host",
                      cwd=tmp_path)
    assert mismatch.returncode == 2 and "does not match" in mismatch.stderr
    # Confirmed: it tries that host and only that host (which does not resolve).
    named = rendio("db", "reset", "--db-url", url, cwd=tmp_path,
                   input="db.example.invalid\n")
    assert named.returncode == 1 and "db.example.invalid" in named.stderr
    assert "Traceback" not in named.stderr


def test_reset_touches_only_the_database_it_names(
    stack: RunningStack, db: ScratchDb, tmp_path: Path
) -> None:
    config = stack.config
    with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
        conn.execute("create table if not exists public.reset_canary (id int)")
    db.query("create table public.leftover (id int)")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "20260101000001_a.sql").write_text(
        "create table public.a (id int primary key);")
    # The local stack's settings point at the session stack: the old bug dropped it.
    env = {"RENDIO_STATE_DIR": str(config.state_dir), "RENDIO_API_PORT": str(config.api_port),
           "RENDIO_DB_PORT": str(config.db_port)}
    try:
        result = rendio("db", "reset", "--yes", "--db-url", db.url, "--migrations-dir",
                        str(tmp_path / "migrations"), cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert db.query("select to_regclass('public.leftover'), to_regclass('public.a')") \
            == [(None, "a")]
        with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
            assert conn.execute("select to_regclass('public.reset_canary')").fetchone() \
                == ("reset_canary",)
    finally:
        with psycopg.connect(config.superuser_db_url, autocommit=True) as conn:
            conn.execute("drop table if exists public.reset_canary")


def test_a_project_without_migrations_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "supabase").mkdir()
    (tmp_path / "supabase" / "config.toml").write_text("[api]\nport = 1\n")
    result = rendio("dev", "up", cwd=tmp_path)
    assert result.returncode == 1
    assert "supabase/migrations does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bundled_schema_is_the_repositorys() -> None:
    from rendio_backend.project import bundled_supabase_dir

    bundled = bundled_supabase_dir()
    assert sorted(p.name for p in (bundled / "migrations").glob("*.sql")) \
        == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert (bundled / "config.toml").is_file()


def test_a_project_folder_runs_the_main_job_from_any_subfolder(tmp_path: Path) -> None:
    project = tmp_path / "team-project"
    (project / "app" / "deep").mkdir(parents=True)
    init = rendio("init", cwd=project)
    assert init.returncode == 0, init.stderr
    toml = project / "supabase" / "config.toml"
    api_port, db_port = free_port(), free_port()
    toml.write_text(toml.read_text().replace("port = 54321", f"port = {api_port}")
                    .replace("port = 54322", f"port = {db_port}"))
    try:
        first = rendio("demo", cwd=project / "app" / "deep")
        assert first.returncode == 0, first.stderr
        assert "ledger invariants hold" in first.stderr
        assert (project / ".rendio").is_dir() and not (project / "app" / ".rendio").exists()
        # config.toml's major (17) is not the embedded server's: said once, at start.
        assert first.stderr.count("asks for PostgreSQL 17") <= 1
        new = rendio("db", "new", "add_notes", cwd=project / "app")
        assert new.returncode == 0, new.stderr
        Path(new.stdout.strip()).write_text("create table public.notes (id int);")
        migrate = rendio("db", "migrate", cwd=project / "app")
        assert migrate.returncode == 0, migrate.stderr
        assert "Applied 1 migration(s)" in migrate.stderr
        status = rendio("dev", "status", "-o", "env", cwd=project / "app")
        assert status.returncode == 0, status.stderr
        assert f'API_URL="http://127.0.0.1:{api_port}"' in status.stdout
    finally:
        down = rendio("dev", "down", cwd=project)
    assert "stopped" in down.stderr


def test_ctrl_c_during_up_exits_130_and_says_what_runs(tmp_path: Path) -> None:
    state = stack_dir("interrupt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDIO_")}
    env.update(RENDIO_STATE_DIR=str(state), RENDIO_API_PORT=str(free_port()),
               RENDIO_DB_PORT=str(free_port()))
    process = subprocess.Popen([RENDIO, "dev", "up"], cwd=tmp_path, env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # interrupt once PostgreSQL is up
            if "applied" in line or "starting PostgREST" in line:
                break
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=60) == 130
        assert "interrupted; left running: postgres" in rest
        assert "Traceback" not in rest
    finally:
        process.kill()
        subprocess.run([RENDIO, "dev", "down"], cwd=tmp_path, env=env, capture_output=True,
                       timeout=60)
