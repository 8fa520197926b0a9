"""The project's own supabase/migrations pass what CI demands of migrations."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.stack import MIGRATIONS, REPO, RunningStack


def _rendio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rendio_cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_db_check_passes_on_the_project_migrations(stack: RunningStack) -> None:
    # fresh scratch database → migrate → re-migrate no-op → lint clean → no edits
    result = _rendio("db", "check", "--db-url", stack.config.db_url,
                     "--superuser-url", stack.config.superuser_db_url,
                     "--migrations-dir", str(MIGRATIONS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout + result.stderr


def test_migrated_stack_has_no_warn_or_error_lints(stack: RunningStack) -> None:
    result = _rendio("db", "lint", "--db-url", stack.config.db_url, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)
    assert [f for f in findings if f["level"] in ("WARN", "ERROR")] == []


def test_status_shows_everything_applied_and_unchanged(stack: RunningStack) -> None:
    result = _rendio("db", "status", "--db-url", stack.config.db_url, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == len(list(MIGRATIONS.glob("*.sql")))
    assert {row["state"] for row in rows} == {"applied"}
