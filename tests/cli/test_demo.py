"""`rendio demo`, as `make demo` runs it (on a stack of its own): twice, no reset between."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rendio_backend.local._proc import free_port
from tests.support.stack import REPO


def test_demo_plays_every_flow_twice(tmp_path: Path) -> None:
    env = {**os.environ, "RENDIO_API_PORT": str(free_port()),
           "RENDIO_DB_PORT": str(free_port()), "RENDIO_STATE_DIR": str(tmp_path / "state")}
    env.pop("RENDIO_DB_URL", None)
    try:
        runs = [subprocess.run([sys.executable, "-m", "rendio_cli.main", "demo"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=180)
                for _ in range(2)]
    finally:
        subprocess.run([sys.executable, "-m", "rendio_cli.main", "dev", "down"], cwd=REPO, env=env,
                       capture_output=True, timeout=60)
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "10 flow(s): 10 passed, 0 failed" in run.stderr
        assert "ledger invariants hold" in run.stderr
        assert "✗" not in run.stdout
        for title in ("onboarding:", "generate:", "security:", "load:"):
            assert title in run.stdout
        assert "/storage/v1/object/sign/videos/" in run.stdout  # a video it made
    assert "buckets          created 3, updated 0, unchanged 0" in runs[0].stdout
    # the second run provisions and seeds nothing new
    assert "buckets          created 0, updated 0, unchanged 3" in runs[1].stdout
    assert "models           created 0, updated 0, unchanged 5" in runs[1].stdout
