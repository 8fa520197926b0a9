"""Finding the project, and the one settings loader (environment over `.env` over
`supabase/config.toml` over the defaults). Pure: no stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from rendio_backend import ConfigurationError, RendioConfig
from rendio_backend.local.config import DEFAULT_API_PORT, StackConfig
from rendio_backend.local.errors import StackError
from rendio_backend.project import Project, find_project


def make_project(root: Path, toml: str = "", env: str = "") -> Project:
    (root / "supabase" / "migrations").mkdir(parents=True)
    if toml:
        (root / "supabase" / "config.toml").write_text(toml)
    if env:
        (root / ".env").write_text(env)
    return Project(root=root, found=True)


def test_the_project_is_found_from_a_subfolder(tmp_path: Path) -> None:
    make_project(tmp_path, toml="[api]\nport = 1\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    project = find_project(deep)
    assert project.found and project.root == tmp_path
    assert project.state_dir == tmp_path / ".rendio"
    lone = tmp_path.parent / f"{tmp_path.name}-lone"
    lone.mkdir()
    assert find_project(lone) == Project(root=lone, found=False)


def test_rendio_settings_come_from_env_then_dotenv_then_config_toml(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, toml="[api]\nport = 60001\n[db]\nport = 60002\nmajor_version = 15\n",
        env="RENDIO_API_PORT=61001\nRENDIO_STATE_DIR=state\nRENDIO_GATEWAY_WORKERS=3\n")
    config = StackConfig.from_env(project=project, environ={})
    assert config.api_port == 61001  # .env over config.toml
    assert config.db_port == 60002  # config.toml over the default
    assert config.state_dir == tmp_path / "state"  # relative to the project, not the cwd
    assert config.gateway_workers == 3 and config.project_pg_major == 15
    wins = StackConfig.from_env(project=project, environ={"RENDIO_API_PORT": "62001"})
    assert wins.api_port == 62001  # the environment over .env
    bare = StackConfig.from_env(project=make_project(tmp_path / "bare"), environ={})
    assert bare.api_port == DEFAULT_API_PORT and bare.project_pg_major is None


def test_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path, env="RENDIO_API_PORT=http\n")
    with pytest.raises(StackError, match="RENDIO_API_PORT must be a positive whole number"):
        StackConfig.from_env(project=project, environ={})
    (project.config_toml).write_text("[db]\nport = 'x'\n")
    (project.env_file).unlink()
    with pytest.raises(ConfigurationError, match=r"\[db\] port must be a positive"):
        StackConfig.from_env(project=Project(root=tmp_path, found=True), environ={})
    (project.config_toml).write_text("[db\n")
    with pytest.raises(ConfigurationError, match="cannot read"):
        Project(root=tmp_path, found=True).settings  # noqa: B018


def test_a_url_that_is_not_a_url_says_so() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RendioConfig.from_env(env_file=None, environ={"SUPABASE_URL": "not a url"})
    assert caught.value.code == "invalid_supabase_url"
    assert "SUPABASE_ANON_KEY" not in str(caught.value)


def test_migrations_outside_a_project_are_rendios_own(tmp_path: Path) -> None:
    lone = Project(root=tmp_path, found=False)
    assert lone.migrations_to_apply().parent.name == "_supabase"
    created = lone.init()
    assert (tmp_path / "supabase" / "config.toml") in created
    assert lone.init() == []  # never overwrites
    empty = Project(root=tmp_path / "empty", found=True)
    with pytest.raises(ConfigurationError, match="does not exist"):
        empty.migrations_to_apply()


def test_error_messages_say_what_and_how_much() -> None:
    from postgrest.exceptions import APIError

    from rendio_backend import InsufficientCredits, NotFound
    from rendio_backend._errors_map import from_postgrest

    short = from_postgrest(APIError({"code": "PT402", "message": "insufficient_credits",
                                     "details": '{"required": 4, "available": 1}'}))
    assert isinstance(short, InsufficientCredits)
    assert "insufficient credits: 4 required, 1 available" in str(short)
    model = from_postgrest(APIError({"code": "PT404", "message": "not_found",
                                     "details": '{"resource": "model"}'}))
    user = from_postgrest(APIError({"code": "PT404", "message": "not_found",
                                    "details": '{"resource": "user"}'}))
    assert isinstance(model, NotFound) and model.code == user.code == "not_found"
    assert "model not found" in str(model) and "user not found" in str(user)


def test_no_shipped_migration_is_dated_in_the_future() -> None:
    """`rendio db new` stamps the current UTC time; a shipped migration dated later
    would sort after a user's new one and make `db migrate` refuse to apply it."""
    from datetime import UTC, datetime

    from tests.support.stack import MIGRATIONS

    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    future = [path.name for path in MIGRATIONS.glob("*.sql") if path.name[:14] > now]
    assert future == []
