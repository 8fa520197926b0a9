"""The operator commands, run as the installed console script against the session stack.

`storage`, `models`, `users`, `credits`, `jobs`, `ledger` and `doctor`: each command's
happy path, its `--json` shape, a usage error (exit 2) and a refusal (exit 1, one red
line). The project is named by the shared connection options, not the environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from rendio_backend import RendioAdmin
from tests.cli.test_cli_installed import rendio
from tests.support.ledger_model import new_model, new_user
from tests.support.stack import MIGRATIONS, RunningStack, SqlRunner


def _connection(stack: RunningStack) -> list[str]:
    return ["--url", stack.config.api_url, "--anon-key", stack.publishable_key,
            "--service-role-key", stack.secret_key]


def ops(stack: RunningStack, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`rendio ARGS --url … --anon-key … --service-role-key …` on the session stack."""
    return rendio(*args, *_connection(stack), cwd=cwd)


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_red_line(result: subprocess.CompletedProcess[str], *, containing: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, \
        result.stderr
    assert containing in result.stderr and "Traceback" not in result.stderr


# --- storage and models -------------------------------------------------------------


def test_storage_provision_is_idempotent_and_says_so(stack: RunningStack,
                                                    tmp_path: Path) -> None:
    ops(stack, tmp_path, "storage", "provision")
    again = ops(stack, tmp_path, "storage", "provision")
    assert again.returncode == 0, again.stderr
    assert again.stdout and all(line.endswith(": unchanged")
                                for line in again.stdout.splitlines())
    assert "created 0, updated 0, unchanged" in again.stderr
    report = ok_json(ops(stack, tmp_path, "storage", "provision", "--dry-run", "--json"))
    assert report["dry_run"] is True
    assert {item["action"] for item in report["items"]} == {"unchanged"}
    assert {"videos", "thumbnails"} <= {item["bucket"] for item in report["items"]}


def test_models_seed_from_a_file_then_list(stack: RunningStack, sql: SqlRunner,
                                          tmp_path: Path) -> None:
    model_id = str(uuid.uuid4())
    name = f"cli-seed-{model_id[:8]}"
    entry = {"id": model_id, "name": name, "category": "text-to-video",
             "description": "seeded by the CLI test", "cost_per_generation": 3,
             "provider": "fal", "provider_model_id": f"fal-ai/cli-{model_id[:8]}",
             "is_featured": False, "is_available": False, "thumbnail_url": None,
             "settings_schema": {}}
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"version": "test.1", "models": [entry]}))
    try:
        first = ops(stack, tmp_path, "models", "seed", "--file", str(catalog))
        assert first.returncode == 0, first.stderr
        assert first.stdout == f"{model_id} {name}: created\n"
        assert "catalog test.1: created 1, updated 0, unchanged 0" in first.stderr
        catalog.write_text(json.dumps({"version": "test.2",
                                       "models": [{**entry, "cost_per_generation": 5}]}))
        second = ok_json(ops(stack, tmp_path, "models", "seed", "--file", str(catalog),
                             "--json"))
        assert second["catalog_version"] == "test.2" and second["dry_run"] is False
        assert [(i["model_id"], i["action"], i["changed_fields"]) for i in second["items"]] \
            == [(model_id, "updated", ["cost_per_generation"])]
        third = ops(stack, tmp_path, "models", "seed", "--file", str(catalog))
        assert third.stdout.endswith(": unchanged\n"), third.stderr

        listed = ok_json(ops(stack, tmp_path, "models", "list", "--json"))
        mine = [m for m in listed if m["id"] == model_id]
        assert mine and mine[0]["cost_per_generation"] == 5 and not mine[0]["is_available"]
        table = ops(stack, tmp_path, "models", "list")
        assert table.returncode == 0 and name in table.stdout
    finally:
        sql("delete from public.models where id = %s", model_id)

    missing = ops(stack, tmp_path, "models", "seed", "--file", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    (tmp_path / "bad.json").write_text('{"version": "x"}')
    one_red_line(ops(stack, tmp_path, "models", "seed", "--file", str(tmp_path / "bad.json")),
                 containing="invalid model catalog")


# --- users and credits --------------------------------------------------------------


def test_users_show_by_id_device_and_apple_sub(stack: RunningStack, sql: SqlRunner,
                                               tmp_path: Path) -> None:
    user = new_user(sql)
    device, sub = f"device-{user[:8]}", f"apple.{user[:8]}"
    sql("update public.users set device_id = %s, apple_sub = %s where id = %s",
        device, sub, user)
    by_id = ok_json(ops(stack, tmp_path, "users", "show", user, "--json"))
    assert by_id["id"] == user and by_id["device_id"] == device
    assert {"credits_remaining", "credits_total", "is_guest", "tier"} <= by_id.keys()
    assert ok_json(ops(stack, tmp_path, "users", "show", "--device", device, "--json")) \
        == by_id
    assert ok_json(ops(stack, tmp_path, "users", "show", "--apple-sub", sub, "--json")) \
        == by_id
    lines = ops(stack, tmp_path, "users", "show", user)
    assert lines.returncode == 0 and "apple_sub" in lines.stdout and sub in lines.stdout

    one_red_line(ops(stack, tmp_path, "users", "show", str(uuid.uuid4())),
                 containing="user not found")
    one_red_line(ops(stack, tmp_path, "users", "show", "not-a-uuid"), containing="UUID")
    for args in ([], [user, "--device", device]):
        usage = ops(stack, tmp_path, "users", "show", *args)
        assert usage.returncode == 2 and "exactly one of" in usage.stderr


def test_credits_grant_and_history(stack: RunningStack, sql: SqlRunner,
                                   tmp_path: Path) -> None:
    user = new_user(sql)
    granted = ops(stack, tmp_path, "credits", "grant", user, "5")
    assert granted.returncode == 0, granted.stderr
    assert granted.stdout == "granted 5 credit(s) (admin_adjustment): balance 5, lifetime 5\n"
    once = ok_json(ops(stack, tmp_path, "credits", "grant", user, "3", "--transaction-id",
                       f"support-{user}", "--json"))
    assert once["already_processed"] is False and once["credits_remaining"] == 8
    again = ops(stack, tmp_path, "credits", "grant", user, "3", "--transaction-id",
                f"support-{user}")
    assert again.returncode == 0 and again.stdout.startswith("unchanged:"), again.stderr
    assert "balance 8" in again.stdout

    page = ok_json(ops(stack, tmp_path, "credits", "history", user, "--limit", "1",
                       "--json"))
    assert [(r["change"], r["reason"]) for r in page["items"]] == [(3, "admin_adjustment")]
    assert page["next_cursor"]
    rest = ok_json(ops(stack, tmp_path, "credits", "history", user, "--cursor",
                       page["next_cursor"], "--json"))
    assert [r["change"] for r in rest["items"]] == [5] and rest["next_cursor"] is None
    table = ops(stack, tmp_path, "credits", "history", user)
    assert table.returncode == 0 and "+5" in table.stdout and "+3" in table.stdout

    for args in (["grant", user, "0"], ["grant", user, "1", "--reason", "gift"],
                 ["history", user, "--limit", "0"],
                 ["grant", user, "1", "--reason", "iap_purchase"]):
        usage = ops(stack, tmp_path, "credits", *args)
        assert usage.returncode == 2 and "Usage: rendio credits" in usage.stderr, args
    # The SQL function's refusal names its field: one red line.
    one_red_line(ops(stack, tmp_path, "credits", "grant", user, "1", "--transaction-id",
                     "x" * 300, "--reason", "iap_purchase"), containing="transaction_id")
    one_red_line(ops(stack, tmp_path, "credits", "grant", str(uuid.uuid4()), "1"),
                 containing="not found")
    one_red_line(ops(stack, tmp_path, "credits", "history", str(uuid.uuid4())),
                 containing="user not found")


# --- jobs and the ledger ------------------------------------------------------------


def test_jobs_list_show_and_retry(stack: RunningStack, sql: SqlRunner, tmp_path: Path) -> None:
    user, model = new_user(sql), new_model(sql, cost=2)
    with RendioAdmin(stack.rendio_config()) as admin:
        admin.add_credits(user, 10)
        failed = admin.create_job(user, model, "a cat surfing", {"duration": "4s"}).job_id
        admin.fail_job(failed, "provider said no")
        pending = admin.create_job(user, model, "still waiting").job_id

    listed = ok_json(ops(stack, tmp_path, "jobs", "list", "--user", user, "--json"))
    assert [j["job_id"] for j in listed["items"]] == [str(pending), str(failed)]
    only_failed = ok_json(ops(stack, tmp_path, "jobs", "list", "--user", user, "--status",
                              "failed", "--limit", "5", "--json"))
    assert [j["job_id"] for j in only_failed["items"]] == [str(failed)]
    assert only_failed["next_cursor"] is None
    table = ops(stack, tmp_path, "jobs", "list", "--user", user)
    assert table.returncode == 0 and "a cat surfing" in table.stdout

    shown = ok_json(ops(stack, tmp_path, "jobs", "show", str(failed), "--json"))
    assert shown["status"] == "failed" and shown["error_message"] == "provider said no"
    assert "provider said no" in ops(stack, tmp_path, "jobs", "show", str(failed)).stdout

    retried = ok_json(ops(stack, tmp_path, "jobs", "retry", str(failed), "--json"))
    assert retried["retried"] == str(failed) and retried["replayed"] is False
    assert retried["status"] == "pending" and retried["credits_used"] == 2
    assert retried["credits_remaining"] == 10 - 2 - 2  # the pending job and the retry
    new = ok_json(ops(stack, tmp_path, "jobs", "show", retried["job_id"], "--json"))
    assert (new["prompt"], new["settings"], new["model_id"]) \
        == ("a cat surfing", {"duration": "4s"}, model)
    # Twice: the same new job, charged once.
    again = ops(stack, tmp_path, "jobs", "retry", str(failed))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == retried["job_id"] and "not charged again" in again.stderr
    assert sql("select credits_remaining from public.users where id = %s", user) == [(6,)]

    one_red_line(ops(stack, tmp_path, "jobs", "retry", str(pending)),
                 containing="only failed jobs can be retried")
    one_red_line(ops(stack, tmp_path, "jobs", "show", str(uuid.uuid4())),
                 containing="job not found")
    usage = ops(stack, tmp_path, "jobs", "list", "--status", "stuck")
    assert usage.returncode == 2 and "--status" in usage.stderr


def test_ledger_verify_reports_violations_and_exits_1(
    stack: RunningStack, sql: SqlRunner, tmp_path: Path
) -> None:
    clean = ops(stack, tmp_path, "ledger", "verify", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout) == [] and "ledger invariants hold" in clean.stderr

    user = new_user(sql)
    sql("alter table public.users disable trigger users_set_updated_at")
    try:
        sql("update public.users set credits_remaining = credits_remaining + 1 "
            "where id = %s", user)
        broken = ops(stack, tmp_path, "ledger", "verify", "--json")
        assert broken.returncode == 1
        assert {v["invariant"] for v in json.loads(broken.stdout) if v["user_id"] == user} \
            == {"balance_equals_ledger_sum"}
        assert broken.stderr == "error: 1 ledger violation(s)\n"
        table = ops(stack, tmp_path, "ledger", "verify")
        assert table.returncode == 1 and "balance_equals_ledger_sum" in table.stdout
    finally:
        sql("update public.users set credits_remaining = credits_remaining - 1 "
            "where id = %s", user)
        sql("alter table public.users enable trigger users_set_updated_at")


# --- doctor -------------------------------------------------------------------------


def _doctor(stack: RunningStack, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return ops(stack, tmp_path, "doctor", "--db-url", stack.config.db_url,
               "--migrations-dir", str(MIGRATIONS), *args)


def _checks(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0)
    return {check["name"]: check for check in report["checks"]}


def test_doctor_reports_the_missing_worker_with_its_fix(
    stack: RunningStack, sql: SqlRunner, tmp_path: Path
) -> None:
    with RendioAdmin(stack.rendio_config()) as admin:
        admin.provision_storage()
        admin.seed_models()
    # The session stack runs no worker; one a test killed would still look alive a while.
    sql("update public.worker_heartbeats set stopped_at = now() where stopped_at is null")

    result = _doctor(stack, tmp_path, "--json")
    assert result.returncode == 1
    checks = _checks(result)
    assert list(checks) == ["config", "connectivity", "buckets", "models", "worker",
                            "migrations", "lint"]
    for name in ("config", "connectivity", "buckets", "models", "migrations"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["worker"]["status"] == "fail"
    assert "rendio worker" in checks["worker"]["fix"]
    assert result.stderr.startswith("error: ") and "worker" in result.stderr

    lines = _doctor(stack, tmp_path)
    assert lines.returncode == 1
    assert "✗ worker: no worker heartbeat" in lines.stdout
    assert "    fix: start one: `rendio worker`" in lines.stdout
    assert "✓ connectivity" in lines.stdout

    with RendioAdmin(stack.rendio_config()) as admin:
        admin.record_worker_heartbeat("doctor-test", hostname="here", pid=1, concurrency=1)
        try:
            alive = _checks(_doctor(stack, tmp_path, "--json"))
        finally:
            admin.record_worker_heartbeat("doctor-test", hostname="here", pid=1,
                                          concurrency=1, stopped=True)
    assert alive["worker"]["status"] == "ok" and "doctor-test" in alive["worker"]["detail"]


def test_doctor_names_pending_migrations_and_unreachable_projects(
    stack: RunningStack, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, migrations)
    (migrations / "29991231000000_not_yet.sql").write_text("select 1;")
    pending = _checks(_doctor(stack, tmp_path, "--json", "--migrations-dir",
                              str(migrations)))
    assert pending["migrations"]["status"] == "fail"
    assert "29991231000000_not_yet.sql" in pending["migrations"]["detail"]
    assert "rendio db migrate" in pending["migrations"]["fix"]

    down = rendio("doctor", "--url", "http://127.0.0.1:1", "--json", cwd=tmp_path)
    checks = _checks(down)
    assert down.returncode == 1
    assert checks["connectivity"]["status"] == "fail"
    assert "rendio dev up" in checks["connectivity"]["fix"]
    assert {checks[n]["status"] for n in ("buckets", "models", "worker")} == {"skip"}

    hosted = rendio("doctor", "--url", "https://example.invalid", "--json", cwd=tmp_path)
    config = _checks(hosted)["config"]
    assert hosted.returncode == 1 and config["status"] == "fail"
    assert "--anon-key" in config["fix"]


# --- conventions --------------------------------------------------------------------

OPERATOR_COMMANDS = [
    ["storage", "provision"], ["models", "seed"], ["models", "list"], ["users", "show"],
    ["credits", "grant"], ["credits", "history"], ["jobs", "list"], ["jobs", "show"],
    ["jobs", "retry"], ["ledger", "verify"], ["doctor"],
]


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=" ".join)
def test_every_operator_command_has_an_example_json_and_connection_options(
    command: list[str], tmp_path: Path
) -> None:
    result = rendio(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout and f"rendio {' '.join(command)}" in result.stdout
    for option in ("--json", "--url", "--anon-key", "--service-role-key"):
        assert option in result.stdout


HEAVY = ("supabase", "postgrest", "httpx", "fastapi", "psycopg", "storage3", "gotrue")


@pytest.mark.parametrize("args", [["--help"], ["jobs", "--help"], ["doctor", "--help"]])
def test_help_does_not_import_the_heavy_libraries(args: list[str]) -> None:
    """`rendio --help` stays fast (< 300 ms) because it imports none of these."""
    probe = (
        "import sys\n"
        f"sys.argv = ['rendio', *{args!r}]\n"
        "from rendio_cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}),"
        " file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert "Usage: rendio" in result.stdout, result.stderr
    assert result.stderr.strip() == "[]"
