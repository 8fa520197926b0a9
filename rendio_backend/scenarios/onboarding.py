"""`onboarding`: anonymous sign-in, the device check, 10 credits; a reinstall gets none."""

from __future__ import annotations

import uuid

from ..models import DeviceCheckResult
from ._context import Context
from ._report import Recorder, Skip

NAME = "onboarding"
SUMMARY = "anonymous sign-in, device check, 10 credits; a reinstall gets none"
INITIAL_CREDITS = 10


def _grant(result: DeviceCheckResult) -> str:
    return f"{'granted' if result.granted else 'not granted'}, {result.credits_remaining} credits"


async def run(ctx: Context, rec: Recorder) -> None:
    tokens = ctx.options.device_tokens
    if tokens is None:
        raise Skip("needs DeviceCheck tokens, which only an iPhone makes "
                   "(the local stack's fake DeviceCheck accepts made-up ones)")
    app = ctx.client()
    session = await app.sign_in_anonymously()
    rec.equal("anonymous sign-in", "a guest session",
              "a guest session" if session.is_anonymous else "a non-anonymous session")
    rec.equal("balance before the device check", 0,
              (await app.get_balance()).credits_remaining)
    # The app's identifierForVendor; DeviceCheck knows the phone behind the tokens.
    phone = f"sim-phone-{uuid.uuid4().hex[:12]}"
    vendor_id = f"sim-device-{uuid.uuid4()}"
    first = await app.check_device(vendor_id, tokens(phone))
    rec.equal("device check", f"granted, {INITIAL_CREDITS} credits", _grant(first))
    again = await app.check_device(vendor_id, tokens(phone))
    rec.equal("the same device again", f"not granted, {INITIAL_CREDITS} credits", _grant(again))
    history = (await app.credit_history(limit=5)).items
    rec.equal("ledger", "one initial_grant of +10",
              ", ".join(f"one {row.reason.value} of {row.change:+d}" for row in history))
    # A reinstall: a new guest and a new identifierForVendor, the same phone.
    reinstalled = ctx.client()
    await reinstalled.sign_in_anonymously()
    rec.check("reinstall signs in as a new guest", "another user id",
              "another user id" if reinstalled.user_id != app.user_id else "the same user id",
              reinstalled.user_id != app.user_id)
    second = await reinstalled.check_device(f"sim-device-{uuid.uuid4()}", tokens(phone))
    rec.equal("device check after the reinstall", "not granted, 0 credits", _grant(second))
