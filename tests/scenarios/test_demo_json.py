"""`rendio demo --json` end to end: the installed console script, in an empty folder
(the bundled schema, no checkout), on a stack of its own on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rendio_backend.local._proc import free_port
from rendio_backend.scenarios import FLOW_NAMES

RENDIO = str(Path(sys.executable).parent / "rendio")


def test_demo_json_reports_every_flow_passed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENDIO_", "SUPABASE_"))}
    env.update(RENDIO_API_PORT=str(free_port()), RENDIO_DB_PORT=str(free_port()))
    try:
        result = subprocess.run([RENDIO, "demo", "--json"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=180)
    finally:
        subprocess.run([RENDIO, "dev", "down"], cwd=tmp_path, env=env, capture_output=True,
                       timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # one object, nothing else on stdout
    assert report["ok"] is True
    assert [flow["flow"] for flow in report["flows"]] == list(FLOW_NAMES)
    for flow in report["flows"]:
        assert flow["ok"] and flow["skipped"] is None and flow["error"] is None, flow
        assert flow["steps"] and all(step["ok"] for step in flow["steps"]), flow
    assert report["api_url"] == f"http://127.0.0.1:{env['RENDIO_API_PORT']}"
    assert "/storage/v1/object/sign/videos/" in report["video_url"]
    assert report["buckets"] == "created 3, updated 0, unchanged 0"
    assert (tmp_path / ".rendio").is_dir()  # the stack's state beside the folder
