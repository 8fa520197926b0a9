"""`rendio init`: start a project folder from Rendio's own schema."""

from __future__ import annotations

from pathlib import Path

from . import _console


def init() -> None:
    """Copy Rendio's supabase/ (config.toml, migrations) into this folder; keeps files.

    \b
    Example:
      mkdir my-app && cd my-app && rendio init && rendio dev up
    """
    from rendio_backend.project import Project

    project = Project(root=Path.cwd().absolute(), found=True)
    created = project.init()
    for path in created:
        _console.out.print(f"created {path.relative_to(project.root)}", markup=False)
    if created:
        _console.success(f"project ready in {project.root}: `rendio dev up` starts it")
    else:
        _console.success(f"{project.supabase_dir} already holds Rendio's schema: unchanged")
