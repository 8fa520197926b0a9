"""What the benchmarks share: a throw-away stack and a PostgREST on TCP beside it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rendio_backend.local._proc import PidFile, free_port, spawn, wait_until
from rendio_backend.local.auth_settings import AuthSettings, RateLimits
from rendio_backend.local.config import StackConfig
from rendio_backend.local.postgrest import authenticator_uri, ensure_binary, write_config
from rendio_backend.local.stack import Stack

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
# The load average when the benchmark module was imported (the start of its run): the
# machine may be shared, and the figures depend on it.
LOAD_AT_START = os.getloadavg()


def write_result(name: str, figures: dict[str, Any], *, ratio: float, ratio_of: str,
                 goal: str | None = None, goal_met: bool | None = None) -> Path:
    """bench/results/NAME.json: the figures, the ratio against the baseline measured in
    the same run, the machine and its load; prints the ratio line."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in LOAD_AT_START],
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "ratio": {"value": round(ratio, 3), "of": ratio_of, "goal": goal,
                  "goal_met": goal_met},
        **figures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    verdict = "" if goal is None else f"; goal {goal}: {'met' if goal_met else 'NOT met'}"
    print(f"[{name}] ratio {ratio:.3g} = {ratio_of}{verdict}")
    print(f"[{name}] wrote {path.relative_to(REPO)}")
    return path


@contextmanager
def scratch_stack() -> Iterator[tuple[Stack, Path]]:
    """A stack in a temporary directory on free ports, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="rendio-bench-"))
    pg_bin = os.environ.get("RENDIO_PG_BIN")
    # Anonymous sign-ins on (as Rendio's config.toml has them), Auth's limits off: the
    # benchmarks sign many users in from one address.
    auth = AuthSettings(enable_anonymous_sign_ins=True, enable_confirmations=False,
                        rate_limits=RateLimits(enabled=False))
    config = StackConfig(state_dir=root / "state", api_port=free_port(), db_port=free_port(),
                         pg_bin_dir=Path(pg_bin) if pg_bin else None, auth=auth,
                         gateway_workers=int(os.environ.get("RENDIO_GATEWAY_WORKERS", "1")),
                         # Benchmarks start the workers they measure, if any.
                         run_worker=False)
    stack = Stack(config)
    try:
        yield stack, root
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def direct_postgrest(config: StackConfig) -> Iterator[str]:
    """A second PostgREST with the stack's settings on a TCP port; yields its URL."""
    port = free_port()
    conf = write_config(config, db_uri=authenticator_uri(config), listen=f"127.0.0.1:{port}",
                        path=config.run_dir / "direct-postgrest.conf")
    process = spawn([str(ensure_binary()), str(conf)],
                    log_path=config.log_dir / "direct-postgrest.log")
    pid_file = PidFile(config.run_dir / "direct-postgrest.pid", marker="postgrest")
    pid_file.write(process.pid)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url + "/", timeout=1):
                return True
        except OSError:
            return False

    try:
        if not wait_until(ready, 20):
            raise SystemExit("the direct PostgREST did not start")
        yield url
    finally:
        pid_file.stop()
