"""More gateways on the session stack's database, for settings the suite does not use.

Each runs exactly as `rendio dev up` runs the gateway (uvicorn over
`rendio_backend.local.gateway:create_app`), on its own port with its own configuration,
against the same PostgreSQL, PostgREST and storage directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from rendio_backend.local._proc import free_port
from rendio_backend.local.config import save_config
from tests.support.stack import RunningStack


@dataclass
class ServedGateway(RunningStack):
    """The session stack as this gateway serves it, and the gateway's log."""

    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve_gateways(base: RunningStack,
                   **changes: dict[str, Any]) -> Iterator[dict[str, ServedGateway]]:
    """A gateway for each name, `base` with its `changes` (an `auth=` setting, say), on
    free ports; started together, since each takes a few seconds to come up."""
    served: dict[str, ServedGateway] = {}
    processes: list[subprocess.Popen[bytes]] = []
    config_paths: list[Path] = []
    try:
        for name, change in changes.items():
            config = replace(base.config, api_port=free_port(), **change)
            config_path = config.run_dir / f"gateway-{name}.json"
            save_config(config, config_path)
            config_paths.append(config_path)
            gateway = ServedGateway(base.stack, config, config.log_dir / f"gateway-{name}.log")
            argv = [sys.executable, "-m", "uvicorn", "rendio_backend.local.gateway:create_app",
                    "--factory", "--host", config.host, "--port", str(config.api_port),
                    "--lifespan", "on", "--no-access-log", "--log-level", "warning"]
            with gateway.log.open("wb") as output:
                processes.append(subprocess.Popen(
                    argv, stdout=output, stderr=subprocess.STDOUT,
                    env={**os.environ, "RENDIO_STACK_CONFIG": str(config_path)}))
            served[name] = gateway
        for (name, gateway), process in zip(served.items(), processes, strict=True):
            _wait_ready(name, gateway, process)
        yield served
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for config_path in config_paths:
            config_path.unlink(missing_ok=True)


def _wait_ready(name: str, gateway: ServedGateway, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{gateway.config.api_url}/_rendio/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"gateway {name} did not start:\n{gateway.log_text()}")
        time.sleep(0.1)
