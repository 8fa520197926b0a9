"""`purchase`: a StoreKit 2 purchase is credited once (a replay adds nothing), and the
App Store's REFUND notification takes the credits back once.

Only the App Store signs transactions: the signer is injected
(`SimulationOptions.storekit`; `rendio simulate` passes the local stack's test chain),
and against a hosted project, where none exists, the flow is skipped.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from postgrest import AsyncPostgrestClient

from .._errors_map import translating
from ..errors import NotFound
from ._context import Context
from ._report import Recorder, Skip

NAME = "purchase"
SUMMARY = "an in-app purchase credited once, its replay, its refund notification"


async def _product_credits(ctx: Context) -> int:
    """The credits of the product bought, added to the catalog (service role) if missing."""
    product_id = ctx.options.product_id
    try:
        return (await ctx.admin.get_iap_product(product_id)).credits
    except NotFound:
        pass
    key = ctx.config.require_service_role_key()
    rest = AsyncPostgrestClient(ctx.config.rest_url, http_client=ctx.http,
                                headers={"apikey": key, "Authorization": f"Bearer {key}"})
    with translating():
        await rest.table("iap_products").upsert(
            {"product_id": product_id, "credits": ctx.options.product_credits,
             "description": "bought by `rendio simulate purchase`"},
            on_conflict="product_id", ignore_duplicates=True).execute()
    return (await ctx.admin.get_iap_product(product_id)).credits


async def _notify(ctx: Context, signed_payload: str) -> dict[str, Any]:
    # Apple posts with neither an API key nor a user token: the signature is the credential.
    response = await ctx.http.post(f"{ctx.config.functions_url}/apple/notifications",
                                   json={"signedPayload": signed_payload})
    body = response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else {}
    return {"status": response.status_code, **(body if isinstance(body, dict) else {})}


async def run(ctx: Context, rec: Recorder) -> None:
    signer = ctx.options.storekit
    if signer is None:
        raise Skip("needs transactions signed by the App Store's chain, which only the "
                   "App Store (or the local stack's test chain) signs")
    credits = await _product_credits(ctx)
    product = ctx.options.product_id
    app = await ctx.guest()
    transaction = str(2_000_000_000_000_000 + secrets.randbelow(10**15))
    signed = signer.sign_transaction(product, transaction_id=transaction,
                                     app_account_token=app.user_id)
    first = await app.redeem_transaction(signed)
    rec.equal("update-credits with the signed transaction", f"+{credits}, balance {credits}",
              f"+{first.credits_added}, balance {first.credits_remaining}")
    again = await app.redeem_transaction(signed)
    rec.equal("the same transaction again", f"already processed, +0, balance {credits}",
              f"{'already processed' if again.already_processed else 'processed'}, "
              f"+{again.credits_added}, balance {again.credits_remaining}")

    refund = signer.sign_notification(
        "REFUND", notification_uuid=uuid.uuid4(),
        signed_transaction=signer.sign_transaction(
            product, transaction_id=transaction, app_account_token=app.user_id,
            revocation_date=int(time.time() * 1000)))
    answer = await _notify(ctx, refund)
    rec.equal("App Store REFUND notification", "200 refunded",
              f"{answer['status']} {answer.get('outcome')}")
    rec.equal("balance after the refund", 0, (await app.get_balance()).credits_remaining)
    repeat = await _notify(ctx, refund)
    rec.equal("the notification delivered again", "200, already processed",
              f"{repeat['status']}, "
              f"{'already processed' if repeat.get('already_processed') else 'processed'}")
    replayed = await app.redeem_transaction(signed)
    rec.equal("the refunded transaction redeemed again", "+0, balance 0",
              f"+{replayed.credits_added}, balance {replayed.credits_remaining}")
