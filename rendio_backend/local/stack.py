"""The whole local stack: PostgreSQL, PostgREST, the gateway and a generation worker,
as daemons.

`Stack.up()` is idempotent: it starts only the pieces that are not running (a piece that
was killed is started again) and re-applies the bootstrap SQL, which changes nothing
when it is already in place. State lives under `config.state_dir`; `down()` stops only
processes recorded in our pid files (PostgreSQL's own postmaster.pid included).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rendio_backend.dbtools.bootstrap import bootstrap
from rendio_backend.dbtools.connection import connect, redact_url
from rendio_backend.dbtools.errors import DatabaseUnavailable

from ._proc import PidFile, fail_with_log, port_in_use, spawn, wait_until
from .config import StackConfig, save_config
from .errors import PortBusy, StackError
from .postgres import LocalPostgres, server_major_version
from .postgrest import LocalPostgrest


@dataclass(frozen=True)
class PieceStatus:
    name: str
    running: bool
    pid: int | None
    address: str


class LocalGateway:
    """The uvicorn process serving `rendio_backend.local.gateway`."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.pid_file = PidFile(config.run_dir / "gateway.pid",
                                marker="rendio_backend.local.gateway")
        self.log_path = config.log_dir / "gateway.log"
        self.config_path = config.run_dir / "stack.json"

    def pid(self) -> int | None:
        return self.pid_file.live_pid()

    def start(self) -> None:
        if port_in_use(self.config.host, self.config.api_port):
            raise PortBusy("the API gateway", self.config.api_port, "RENDIO_API_PORT")
        save_config(self.config, self.config_path)
        argv = [
            sys.executable, "-m", "uvicorn", "rendio_backend.local.gateway:create_app",
            "--factory", "--host", self.config.host, "--port", str(self.config.api_port),
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
            "--no-access-log", "--no-server-header", "--no-date-header", "--log-level", "warning",
            "--timeout-graceful-shutdown", "5",
        ]
        if self.config.gateway_workers > 1:
            argv += ["--workers", str(self.config.gateway_workers)]
        env = dict(os.environ, RENDIO_STACK_CONFIG=str(self.config_path))
        process = spawn(argv, log_path=self.log_path, env=env)
        self.pid_file.write(process.pid)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.config.api_url}/_rendio/health", timeout=1):
                return True
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not wait_until(lambda: self.ready() or self.pid() is None, timeout):
            raise fail_with_log("the API gateway", self.log_path, f"not ready after {timeout} s")
        if not self.ready():
            self.pid_file.remove()
            raise fail_with_log("the API gateway", self.log_path, "exited during start")

    def stop(self) -> bool:
        return self.pid_file.stop()


class LocalWorker:
    """One `rendio worker` process against the stack (its fake providers included).

    It is the product's worker, started with the stack's URL and keys in its
    environment, as a worker on another machine would be with a hosted project's.
    """

    MARKER = "rendio_cli.main worker"
    # Short pauses: a developer watches jobs finish; `down` waits at most 10 s.
    DEV_ARGS = ("--concurrency", "2", "--poll-interval", "2", "--idle-interval", "0.5",
                "--grace", "5")

    def __init__(self, config: StackConfig, *, name: str = "worker",
                 args: Sequence[str] = DEV_ARGS, log_dir: Path | None = None) -> None:
        self.config = config
        self.args = tuple(args)
        self.pid_file = PidFile(config.run_dir / f"{name}.pid", marker=self.MARKER)
        self.log_path = (log_dir or config.log_dir) / f"{name}.log"

    def pid(self) -> int | None:
        return self.pid_file.live_pid()

    def start(self) -> None:
        argv = [sys.executable, "-m", "rendio_cli.main", "worker", *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RENDIO_WORKER_")}
        env.update(self.config.rendio_config().as_env())
        process = spawn(argv, log_path=self.log_path, env=env)
        self.pid_file.write(process.pid)

    def stop(self) -> bool:
        return self.pid_file.stop()


class Stack:
    """Start, stop and inspect the local stack described by a StackConfig."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres = LocalPostgres(config)
        self.postgrest = LocalPostgrest(config)
        self.gateway = LocalGateway(config)
        self.worker = LocalWorker(config)

    @property
    def external_db(self) -> bool:
        return self.config.external_db_url is not None

    def up(self, *, migrations_dir: Path | None = None,
           on_step: Callable[[str], None] | None = None) -> list[PieceStatus]:
        """Start whatever is not running; apply bootstrap (and migrations if given)."""
        say = on_step or (lambda message: None)
        self._prepare_dirs()
        if not self.external_db:
            if not self.postgres.initialized:
                say("initialising the PostgreSQL cluster")
                self.postgres.init()
            if self.postgres.pid() is None:
                say(f"starting PostgreSQL on port {self.config.db_port}")
                self._say_if_other_major(say)
                self.postgres.start()
        bootstrap(self.config.superuser_db_url)
        if migrations_dir is not None:
            self._migrate(migrations_dir, say)
        started_postgrest = self._start_postgrest(say)
        started_gateway = self._start_gateway(say)
        if started_postgrest:
            self.postgrest.wait_ready()
        if started_gateway:
            self.gateway.wait_ready()
        if self.config.run_worker and self.worker.pid() is None:
            say("starting a generation worker")
            self.worker.start()
        return self.status()

    def down(self) -> list[str]:
        """Stop the pieces we started; returns the names of those that were running."""
        stopped = []
        if self.worker.stop():  # first: it finishes its steps through the gateway
            stopped.append("worker")
        if self.gateway.stop():
            stopped.append("gateway")
        if self.postgrest.stop():
            stopped.append("postgrest")
        if not self.external_db and self.postgres.stop():
            stopped.append("postgres")
        return stopped

    def reset(self) -> None:
        """Drop the database and bootstrap it again (services restarted if they ran)."""
        restart = self.gateway.pid() is not None or self.postgrest.pid() is not None
        self.worker.stop()
        self.gateway.stop()
        self.postgrest.stop()
        if not self.external_db and self.postgres.pid() is None:
            self.up()  # the database must run to be reset
            self.worker.stop()
            self.gateway.stop()
            self.postgrest.stop()
        reset_database(self.config)
        if restart:
            self.up()

    def status(self) -> list[PieceStatus]:
        config = self.config
        if self.external_db:
            db = PieceStatus("postgres", self._db_reachable(), None,
                             redact_url(config.external_db_url or ""))
        else:
            pid = self.postgres.pid()
            db = PieceStatus("postgres", pid is not None, pid, f"{config.host}:{config.db_port}")
        rest_pid = self.postgrest.pid()
        gateway_pid = self.gateway.pid()
        pieces = [
            db,
            PieceStatus("postgrest", rest_pid is not None and self.postgrest.ready(), rest_pid,
                        str(self.postgrest.socket_path)),
            PieceStatus("gateway", gateway_pid is not None and self.gateway.ready(),
                        gateway_pid, config.api_url),
        ]
        worker_pid = self.worker.pid()
        if config.run_worker or worker_pid is not None:
            pieces.append(PieceStatus("worker", worker_pid is not None, worker_pid,
                                      str(self.worker.log_path)))
        return pieces

    def env(self) -> dict[str, str]:
        """The variables `supabase status -o env` prints, for this stack, in its order
        (the CLI still prints the legacy JWT_SECRET, ANON_KEY and SERVICE_ROLE_KEY)."""
        config = self.config
        return {
            "API_URL": config.api_url,
            "DB_URL": config.db_url,
            "PUBLISHABLE_KEY": config.publishable_key,
            "SECRET_KEY": config.secret_key,
            "JWT_SECRET": config.jwt_secret,
            "ANON_KEY": config.anon_key,
            "SERVICE_ROLE_KEY": config.service_role_key,
        }

    def log_paths(self) -> dict[str, Path]:
        return {
            "postgres": self.postgres.log_path,
            "postgrest": self.postgrest.log_path,
            "gateway": self.gateway.log_path,
            "worker": self.worker.log_path,
        }

    # --- steps -----------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        for path in (self.config.state_dir, self.config.run_dir, self.config.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        # The PostgreSQL service user must be able to reach its data directory; nobody
        # else needs to list what is inside (stored objects, keys, logs).
        self.config.state_dir.chmod(0o711)

    def _start_postgrest(self, say: Callable[[str], None]) -> bool:
        if self.postgrest.pid() is not None:
            return False
        if self.postgrest.pid_file.is_stale():
            say("removing a stale PostgREST pid file")
        say("starting PostgREST")
        self.postgrest.start()
        return True

    def _start_gateway(self, say: Callable[[str], None]) -> bool:
        if self.gateway.pid() is not None:
            return False
        if self.gateway.pid_file.is_stale():
            say("removing a stale gateway pid file")
        say(f"starting the API gateway on {self.config.api_url}")
        self.gateway.start()
        return True

    def _say_if_other_major(self, say: Callable[[str], None]) -> None:
        wanted = self.config.project_pg_major
        running = server_major_version(self.postgres.bin_dir)
        if wanted is not None and running is not None and running != wanted:
            say(f"warning: supabase/config.toml asks for PostgreSQL {wanted}; running "
                f"{running} from {self.postgres.bin_dir} (set RENDIO_PG_BIN to a "
                f"PostgreSQL {wanted} installation to match)")

    def _migrate(self, migrations_dir: Path, say: Callable[[str], None]) -> None:
        from rendio_backend.dbtools.migrations import migrate

        if not migrations_dir.is_dir():
            raise StackError(f"migrations folder {migrations_dir} does not exist "
                             "(create a migration with `rendio db new NAME`)")
        applied = migrate(self.config.db_url, migrations_dir)
        if applied:
            say(f"applied {len(applied)} migration(s)")

    def _db_reachable(self) -> bool:
        try:
            with connect(self.config.superuser_db_url, timeout=2):
                return True
        except DatabaseUnavailable:
            return False


def reset_database(config: StackConfig) -> None:
    """Drop and recreate the stack's database, then apply the bootstrap SQL.

    Object files of the local Storage service go too: their rows went with the database.
    """
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(config.superuser_db_url)
    dbname = str(params.get("dbname") or "postgres")
    maintenance = make_conninfo(**dict(params, dbname="template1"))  # type: ignore[arg-type]
    with connect(maintenance) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(dbname)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    shutil.rmtree(config.storage_dir, ignore_errors=True)
    bootstrap(config.superuser_db_url)

