"""Finds the project's `supabase/` folder: the one place that decides where things are.

As the Supabase CLI does, the project root is the nearest folder, from the working
directory upward, that holds `supabase/config.toml` (or `supabase/migrations`); with
none, the working directory itself. Everything of a project hangs off that root: its
migrations, `config.toml` (ports, PostgreSQL major version), `.env` and the local
stack's state in `.rendio/`, so commands run from a subfolder see the same stack.

Rendio's own schema (`supabase/` of this repository) ships inside the package, so a
folder that is not a project yet can still run the local stack and the demo; `rendio
init` (or the first `rendio db new`) copies it into the folder to start a project.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = ["Project", "ProjectSettings", "bundled_supabase_dir", "find_project"]

SUPABASE_DIR = "supabase"
STATE_DIR = ".rendio"


def bundled_supabase_dir() -> Path:
    """Rendio's own `supabase/` (config.toml, migrations), shipped in the package.

    In the repository `_supabase` is a link to `supabase/`; the wheel holds a copy.
    """
    return Path(__file__).resolve().parent / "_supabase"


@dataclass(frozen=True)
class ProjectSettings:
    """What `supabase/config.toml` says about the local stack (None: not set)."""

    api_port: int | None = None
    db_port: int | None = None
    db_major_version: int | None = None
    # The `[auth]` table as written (the local stack reads it: `local/auth_settings.py`).
    auth: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    """A project folder: `root` holds (or will hold) `supabase/`."""

    root: Path
    # False when no folder from the working directory upward holds supabase/.
    found: bool

    @property
    def supabase_dir(self) -> Path:
        return self.root / SUPABASE_DIR

    @property
    def config_toml(self) -> Path:
        return self.supabase_dir / "config.toml"

    @property
    def migrations_dir(self) -> Path:
        return self.supabase_dir / "migrations"

    @property
    def seed_file(self) -> Path:
        return self.supabase_dir / "seed.sql"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @cached_property
    def settings(self) -> ProjectSettings:
        """`[api] port`, `[db] port`, `[db] major_version` and `[auth]` from config.toml.

        Outside any project the local stack runs Rendio's bundled schema, so `[auth]`
        comes from the bundled config.toml too (the app needs its anonymous sign-ins).
        """
        if not self.config_toml.is_file():
            if self.found:
                return ProjectSettings()
            return ProjectSettings(auth=_read_toml(bundled_supabase_dir() / "config.toml")
                                   .get("auth", {}))
        data = _read_toml(self.config_toml)
        api, db = data.get("api", {}), data.get("db", {})
        return ProjectSettings(
            api_port=_whole(api.get("port"), f"{self.config_toml}: [api] port"),
            db_port=_whole(db.get("port"), f"{self.config_toml}: [db] port"),
            db_major_version=_whole(db.get("major_version"),
                                    f"{self.config_toml}: [db] major_version"),
            auth=data.get("auth", {}),
        )

    def migrations_to_apply(self) -> Path:
        """The migrations folder the local stack applies.

        A project's own `supabase/migrations`; outside any project, Rendio's bundled
        schema. A project (config.toml) without a migrations folder is an error, never
        a silently empty database.
        """
        if self.migrations_dir.is_dir():
            return self.migrations_dir
        if not self.found:
            return bundled_supabase_dir() / "migrations"
        raise ConfigurationError(
            f"{self.migrations_dir} does not exist: create a migration with "
            "`rendio db new NAME`, or pass --no-migrate", code="migrations_missing")

    def init(self) -> list[Path]:
        """Copy Rendio's schema (config.toml, migrations) into this folder's supabase/.

        Never overwrites: files that exist are kept. Returns the files created.
        """
        source = bundled_supabase_dir()
        created: list[Path] = []
        for path in sorted([source / "config.toml", *(source / "migrations").glob("*.sql")]):
            target = self.supabase_dir / path.relative_to(source)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            created.append(target)
        return created


def find_project(start: str | os.PathLike[str] | None = None) -> Project:
    """The project containing `start` (default: the working directory)."""
    here = Path(start if start is not None else os.getcwd()).absolute()
    for folder in (here, *here.parents):
        supabase = folder / SUPABASE_DIR
        if (supabase / "config.toml").is_file() or (supabase / "migrations").is_dir():
            return Project(root=folder, found=True)
    return Project(root=here, found=False)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}",
                                 code="invalid_project_config") from exc


def _whole(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{where} must be a positive whole number, not {value!r}",
                                 code="invalid_project_config")
    return value
