"""`rendio models`: the generation model catalog, through `RendioAdmin`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _console, _options
from ._options import AnonKey, DryRun, Json, ServiceRoleKey, Url

app = typer.Typer(help="The model catalog: seed it from its file, list it.",
                  no_args_is_help=True)


@app.command()
def seed(
    file: Annotated[Path | None, typer.Option(
        "--file", exists=True, dir_okay=False, metavar="PATH",
        help="Catalog file (default: the one shipped with rendio-backend).")] = None,
    dry_run: DryRun = False,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Upsert the versioned model catalog. Idempotent: one line per model says created,
    updated (with the fields) or unchanged; models absent from the file are left alone.

    \b
    Example:
      rendio models seed --file catalog/models.json
    """
    with _options.admin(url, anon_key, service_role_key) as admin:
        report = admin.seed_models(file, dry_run=dry_run)
    lines = [_options.change_line(f"{item.model_id} {item.name}", item.action,
                                  item.changed_fields) for item in report.items]
    _options.print_changes(report, lines, f"catalog {report.catalog_version}: "
                           f"{report.summary()}", dry_run=dry_run, as_json=as_json)


@app.command("list")
def list_models(
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """List every model of the catalog, available or not.

    \b
    Example:
      rendio models list --json
    """
    from rich.text import Text

    with _options.admin(url, anon_key, service_role_key) as admin:
        models = admin.list_models()
    if as_json:
        _console.print_json([m.model_dump(mode="json") for m in models])
        return
    table = _options.table("id", "name", "provider", "credits", "available", "featured",
                           wrap="name")
    for m in models:  # Text: names come from the database, not Rich markup
        table.add_row(Text(str(m.id)), Text(m.name),
                      Text(f"{m.provider}/{m.provider_model_id or '-'}"),
                      str(m.cost_per_generation), "yes" if m.is_available else "no",
                      "yes" if m.is_featured else "")
    _options.print_table(table)
