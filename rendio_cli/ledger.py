"""`rendio ledger`: check the credit ledger's invariants (service role)."""

from __future__ import annotations

import typer

from . import _console, _options
from ._options import AnonKey, Json, ServiceRoleKey, Url

app = typer.Typer(help="The credit ledger: verify its invariants.", no_args_is_help=True)


@app.command()
def verify(
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Check every ledger invariant: balances equal their ledger sums, no balance below
    0, each job charged once and refunded at most once, versions without gaps. Exits 1
    and lists the violations when any is broken.

    \b
    Example:
      rendio ledger verify --json
    """
    from rich.text import Text

    with _options.admin(url, anon_key, service_role_key) as admin:
        violations = admin.verify_ledger()
    if as_json:
        _console.print_json([v.model_dump(mode="json") for v in violations])
    elif violations:
        table = _options.table("user", "invariant", "detail", wrap="detail")
        for v in violations:
            table.add_row(Text(str(v.user_id or "-")), Text(v.invariant), Text(v.detail))
        _options.print_table(table)
    if violations:
        _console.error(f"{len(violations)} ledger violation(s)")
        raise typer.Exit(1)
    _console.success("ledger invariants hold")
