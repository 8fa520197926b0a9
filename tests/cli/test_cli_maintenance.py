"""`rendio maintenance`, run as the installed console script against the session stack."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from rendio_backend import JobStatus, RendioAdmin
from tests.cli.test_cli_installed import rendio
from tests.support.ledger_model import ledger_violations, new_model, new_user
from tests.support.stack import RunningStack, SqlRunner

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def _env(stack: RunningStack) -> dict[str, str]:
    """The project the command works on: the session stack, with the service role."""
    return {"SUPABASE_URL": stack.config.api_url, "SUPABASE_SECRET_KEY": stack.secret_key,
            "SUPABASE_PUBLISHABLE_KEY": stack.publishable_key}


def test_run_sweeps_purges_archives_and_removes_files(
    stack: RunningStack, sql: SqlRunner, tmp_path: Path
) -> None:
    user, model = new_user(sql), new_model(sql, cost=2)
    with RendioAdmin(stack.rendio_config()) as admin:
        admin.provision_storage()
        admin.add_credits(user, 10)
        stuck = admin.create_job(user, model, "never finishes").job_id
        old = admin.create_job(user, model, "done long ago").job_id
        video = admin.upload_video(user, old, MP4)
        thumbnail = admin.upload_thumbnail(user, old, JPEG)
        # One path stored with its bucket's prefix, one without: both name the object.
        admin.complete_job(old, video_path=f"videos/{video.path}", thumbnail_path=thumbnail.path)
    sql("update public.video_jobs set deadline_at = now() - interval '1 minute' "
        "where job_id = %s", stuck)
    sql("update public.video_jobs set created_at = now() - interval '91 days' "
        "where job_id = %s", old)
    sql("insert into public.idempotency_log (user_id, idempotency_key, request_hash, "
        "operation_type, expires_at) values (%s, %s, 'h', 'video_generation', "
        "now() - interval '1 hour')", user, uuid.uuid4())

    result = rendio("maintenance", "run", "--json", "--stuck-after", "2h",
                    "--archive-after", "90d", cwd=tmp_path, env=_env(stack))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["fail_stuck"]["jobs_failed"] >= 1
    assert report["fail_stuck"]["stuck_after_seconds"] == 7200
    assert report["remove_strays"]["strays_within_seconds"] == 7 * 86400
    assert report["purge_keys"]["keys_purged"] >= 1
    archive = report["archive"]
    assert archive["jobs_archived"] >= 1 and archive["archive_after_seconds"] == 90 * 86400
    assert {f"videos/{video.path}", f"thumbnails/{thumbnail.path}"} <= set(
        archive["files_removed"])

    assert sql("select status from public.video_jobs where job_id = %s", stuck) == [
        (JobStatus.FAILED.value,)]
    assert sql("select count(*) from public.video_jobs_archive where job_id = %s", old) == [(1,)]
    assert sql("select count(*) from storage.objects where name = any(%s)",
               [video.path, thumbnail.path]) == [(0,)]
    assert sql("select count(*) from private.storage_removals") == [(0,)]
    assert ledger_violations(sql, [user]) == []

    # Again, one step alone, as lines: nothing left to do, and it says so.
    again = rendio("maintenance", "archive", cwd=tmp_path, env=_env(stack))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("archive: 0 finished job(s) created over 90d ago archived; "
                                   "0 file(s) removed")
    lines = rendio("maintenance", "run", cwd=tmp_path, env=_env(stack))
    assert lines.returncode == 0, lines.stderr
    assert [line.split(":")[0] for line in lines.stdout.splitlines()] == [
        "fail-stuck", "remove-strays", "purge-keys", "archive"]


def test_bad_ages_are_usage_errors_and_refusals_one_red_line(
    stack: RunningStack, tmp_path: Path
) -> None:
    usage = rendio("maintenance", "fail-stuck", "--stuck-after", "soon", cwd=tmp_path,
                   env=_env(stack))
    assert usage.returncode == 2 and "--stuck-after" in usage.stderr
    # 0s would fail every healthy job: the SQL function refuses it.
    refused = rendio("maintenance", "fail-stuck", "--stuck-after", "0s", cwd=tmp_path,
                     env=_env(stack))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1
    assert "Traceback" not in refused.stderr
