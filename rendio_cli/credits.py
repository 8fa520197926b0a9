"""`rendio credits`: grant credits and read a user's ledger (service role)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _console, _options
from ._options import AnonKey, Cursor, Json, Limit, ServiceRoleKey, Url

app = typer.Typer(help="Credits: grant them, read a user's ledger.", no_args_is_help=True)

_GRANT_REASONS = ("admin_adjustment", "iap_purchase")


def _reason(value: str) -> str:
    if value not in _GRANT_REASONS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(_GRANT_REASONS)}")
    return value


@app.command()
def grant(
    user_id: Annotated[str, typer.Argument(metavar="USER", help="The user's id.")],
    amount: Annotated[int, typer.Argument(metavar="AMOUNT", min=1,
                                          help="Credits to add (at least 1).")],
    reason: Annotated[str, typer.Option(
        "--reason", metavar="admin_adjustment|iap_purchase", callback=_reason,
        help="The ledger reason (iap_purchase needs --transaction-id).")]
    = "admin_adjustment",
    transaction_id: Annotated[str | None, typer.Option(
        "--transaction-id", metavar="ID",
        help="Makes the grant idempotent: a second grant with this id adds nothing.")]
    = None,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Add credits to a user's balance, written to the ledger (quota_log) with a reason.

    To take credits back, there is no negative grant: refunds of purchases go through
    the App Store notification, a failed job's refund through the worker.

    \b
    Example:
      rendio credits grant 6c1e0d52-3f4b-4c43-9a6e-0f6b1e2d3c4a 5 --transaction-id support-4711
    """
    if reason == "iap_purchase" and not transaction_id:
        raise typer.BadParameter("--reason iap_purchase needs the purchase's "
                                 "--transaction-id", param_hint="--transaction-id")
    with _options.admin(url, anon_key, service_role_key) as admin:
        result = admin.add_credits(user_id, amount, reason=reason,
                                   transaction_id=transaction_id)
    if as_json:
        _console.print_json(result.model_dump(mode="json"))
        return
    if result.already_processed:
        print(f"unchanged: transaction {transaction_id} was already granted; "
              f"balance {result.credits_remaining}")
    else:
        print(f"granted {amount} credit(s) ({reason}): balance {result.credits_remaining}, "
              f"lifetime {result.credits_total}")


@app.command()
def history(
    user_id: Annotated[str, typer.Argument(metavar="USER", help="The user's id.")],
    limit: Limit = 20,
    cursor: Cursor = None,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """A user's ledger, newest first: change, reason, balance after, job or transaction.

    \b
    Example:
      rendio credits history 6c1e0d52-3f4b-4c43-9a6e-0f6b1e2d3c4a --limit 5
    """
    from rich.text import Text

    with _options.admin(url, anon_key, service_role_key) as admin:
        admin.get_user(user_id)  # an unknown user is an error, not an empty ledger
        page = admin.credit_history(user_id, limit=limit, cursor=cursor)
    if as_json:
        _console.print_json(page.model_dump(mode="json"))
        return
    table = _options.table("version", "when", "change", "reason", "balance after",
                           "job / transaction", wrap="reason")
    for row in page.items:
        table.add_row(str(row.version), f"{row.created_at:%Y-%m-%d %H:%M:%S}",
                      f"{row.change:+d}", row.reason.value, str(row.balance_after),
                      Text(str(row.job_id or row.transaction_id or "")))
    _options.print_table(table)
    if page.next_cursor:
        _console.info(f"more: --cursor {page.next_cursor}")
