"""`rendio users`: look a user up by id, device or Apple subject (service role)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import _console, _options
from ._options import AnonKey, Json, ServiceRoleKey, Url

app = typer.Typer(help="Users: look one up by id, device id or Apple subject.",
                  no_args_is_help=True)


@app.command()
def show(
    user_id: Annotated[str | None, typer.Argument(
        metavar="ID", help="The user's id (auth.users.id).", show_default=False)] = None,
    device: Annotated[str | None, typer.Option(
        "--device", metavar="ID", help="Find the user a device is bound to.")] = None,
    apple_sub: Annotated[str | None, typer.Option(
        "--apple-sub", metavar="SUB", help="Find the user with this Apple subject.")] = None,
    url: Url = None, anon_key: AnonKey = None, service_role_key: ServiceRoleKey = None,
    as_json: Json = False,
) -> None:
    """Show one user: balance, tier, guest or Apple, device. Give exactly one of ID,
    --device or --apple-sub; an unknown user exits 1.

    \b
    Examples:
      rendio users show 6c1e0d52-3f4b-4c43-9a6e-0f6b1e2d3c4a
      rendio users show --device 9F1C-DEVICE --json
    """
    given = [v for v in (user_id, device, apple_sub) if v is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of ID, --device or --apple-sub",
                                 param_hint="ID|--device|--apple-sub")
    with _options.admin(url, anon_key, service_role_key) as admin:
        if user_id is not None:
            user = admin.get_user(user_id)
        elif device is not None:
            user = admin.get_user_by_device_id(device)
        elif apple_sub is not None:
            user = admin.get_user_by_apple_sub(apple_sub)
    if as_json:
        _console.print_json(user.model_dump(mode="json"))
    else:
        _options.show_fields(user.model_dump(mode="json"))
