"""`rendio serve`: the API alone, configured like the library, against the test stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rendio_backend import RendioClient
from rendio_backend.local._proc import free_port
from tests.support.stack import RunningStack

RENDIO = str(Path(sys.executable).parent / "rendio")


def test_serve_runs_the_api_for_any_supabase(stack: RunningStack, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RENDIO_", "SUPABASE_"))}
    env.update(SUPABASE_URL=stack.config.api_url, SUPABASE_ANON_KEY=stack.config.anon_key,
               SUPABASE_SERVICE_ROLE_KEY=stack.config.service_role_key)
    server = subprocess.Popen([RENDIO, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("rendio serve did not answer /health")
        with RendioClient(stack.config.rendio_config()) as user:
            token = user.sign_in_anonymously().access_token
        jobs = httpx.get(f"{base}/get-video-jobs", headers={"Authorization": f"Bearer {token}"})
        assert jobs.status_code == 200 and jobs.json() == {"items": [], "next_cursor": None}
        assert httpx.get(f"{base}/get-video-jobs").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert f"for {stack.config.api_url}" in stderr and "Traceback" not in stderr
