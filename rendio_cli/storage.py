"""`rendio storage`: the app's Storage buckets, through `RendioAdmin.provision_storage`."""

from __future__ import annotations

import typer

from . import _options
from ._options import AnonKey, DryRun, Json, ServiceRoleKey, Url

app = typer.Typer(help="Storage: create or update the app's buckets.", no_args_is_help=True)


@app.command()
def provision(
    dry_run: DryRun = False,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Create or update the app's buckets: videos, thumbnails and user_uploads (private,
    size limits, MIME allow-lists). Idempotent: one line per bucket says created, updated
    or unchanged.

    \b
    Example:
      rendio storage provision --url https://abc.supabase.co --service-role-key sb_secret_…
    """
    with _options.admin(url, anon_key, service_role_key) as admin:
        report = admin.provision_storage(dry_run=dry_run)
    lines = [_options.change_line(item.bucket, item.action, item.changes)
             for item in report.items]
    _options.print_changes(report, lines, report.summary(), dry_run=dry_run,
                           as_json=as_json)
