"""The finisher leaves no orphan file when a job is failed while its media is stored
(the deadline passes during the upload): found by the chaos campaign."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rendio_backend import RendioAdmin, RendioConfig
from rendio_backend._async.admin import AsyncRendioAdmin
from rendio_backend.generation.finisher import Finisher, FinishOutcome
from rendio_backend.generation.providers.base import ProviderResult
from rendio_backend.local.fakes.media import make_sample_mp4
from rendio_backend.models import VideoJob
from tests.support.ledger_model import new_user
from tests.support.stack import SqlRunner


@pytest.fixture(scope="module")
def video_url() -> Iterator[str]:
    """A real MP4 served over HTTP, as a provider's result URL."""
    body = make_sample_mp4()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/video.mp4"
    server.shutdown()


def _objects(sql: SqlRunner, job_id: str) -> int:
    rows = sql("select count(*) from storage.objects where name like %s", f"%/{job_id}.%")
    return int(rows[0][0])


@pytest.mark.parametrize("failed_at", ["mid_upload", "before_complete"])
def test_a_job_failed_while_storing_keeps_no_files(
    failed_at: str, admin: RendioAdmin, config: RendioConfig, sql: SqlRunner,
    video_url: str, empty_queue: None,
) -> None:
    user = new_user(sql)
    admin.add_credits(user, 10)
    model = next(m for m in admin.list_models() if m.is_available)
    job = admin.create_job(user, model.id, "a paper boat")

    async def finish() -> FinishOutcome:
        async with AsyncRendioAdmin(config) as service:
            async def deadline_passes(stage: str, current: VideoJob) -> None:
                if stage == failed_at:  # the sweeper fails the job meanwhile
                    await service.fail_job(current.job_id, "deadline_exceeded")

            finisher = Finisher(service, pause=deadline_passes)
            try:
                row = await service.get_job(job.job_id)
                return await finisher.finish(row, ProviderResult(
                    ok=True, video_url=video_url, video_content_type="video/mp4"))
            finally:
                await finisher.aclose()

    assert asyncio.run(finish()) is FinishOutcome.ALREADY_FINAL
    assert admin.get_job(job.job_id).status.value == "failed"
    assert _objects(sql, str(job.job_id)) == 0
    assert admin.verify_ledger() == []
