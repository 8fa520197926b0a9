"""`POST /update-credits` and `POST /apple/notifications`: App Store purchases.

Both verify Apple's signature with app-store-server-library (chain to the configured
root, bundle id, environment; see `apple.storekit`), then the SQL decides: `add_credits`
once per transactionId, `apply_app_store_notification` once per notificationUUID
(REFUND / REVOKE take the purchase's credits back, never below zero).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter

from ...errors import NotFound
from ...models import CreditReason, CreditRedemption
from ..errors import ApiError
from ..schemas import (
    AppleNotificationRequest,
    NotificationReceipt,
    UpdateCreditsRequest,
    error_responses,
)
from ..security import CurrentCaller, CurrentRuntime
from ._apple import answering_apple_errors

log = logging.getLogger("rendio.api")
router = APIRouter(tags=["purchases"])


@router.post("/update-credits", response_model=CreditRedemption,
             responses=error_responses(400, 401, 409, 413, 422, 503))
async def update_credits(
    body: UpdateCreditsRequest,
    caller: CurrentCaller,
    runtime: CurrentRuntime,
) -> CreditRedemption:
    """Credit a StoreKit 2 purchase to the caller, once per App Store transaction.

    A repeat answers 200 `already_processed: true` with the current balance. 400 when the
    signature, app or environment is wrong; 422 `unknown_product` for a productId not in
    the catalog; 422 `transaction_revoked` for a refunded purchase; 409
    `transaction_already_used` when another user redeemed it.
    """
    with answering_apple_errors("signed_transaction"):
        transaction = await runtime.storekit.verify_transaction(body.signed_transaction)
    # The app sets appAccountToken to the user's id when it buys: a token for another
    # user means the signed transaction was lifted from someone else's device.
    token = transaction.app_account_token
    if token is not None and token != caller.user_id:
        raise ApiError(400, "invalid_request", "the purchase was made by another account",
                       field="signed_transaction", reason="app_account_token")
    if transaction.revocation_date is not None:
        raise ApiError(422, "transaction_revoked",
                       "the App Store refunded or revoked this purchase",
                       field="signed_transaction")
    try:
        # Inactive products still count: `active` decides what the app offers, and
        # whoever paid for one must get its credits.
        product = await runtime.admin.get_iap_product(transaction.product_id)
    except NotFound:
        raise ApiError(422, "unknown_product", "the product is not in the catalog",
                       field="signed_transaction",
                       product_id=transaction.product_id) from None
    amount = product.credits * transaction.quantity
    grant = await runtime.admin.add_credits(caller.user_id, amount,
                                            reason=CreditReason.IAP_PURCHASE,
                                            transaction_id=transaction.transaction_id)
    return CreditRedemption(transaction_id=transaction.transaction_id,
                            product_id=transaction.product_id,
                            credits_added=0 if grant.already_processed else amount,
                            credits_remaining=grant.credits_remaining,
                            already_processed=grant.already_processed)


@router.post("/apple/notifications", response_model=NotificationReceipt,
             responses=error_responses(400, 413, 503))
async def apple_notification(
    body: AppleNotificationRequest,
    runtime: CurrentRuntime,
) -> NotificationReceipt:
    """App Store Server Notifications V2 (Apple calls it; the signature is the auth).

    REFUND and REVOKE remove the purchase's credits (never below zero; the shortfall is
    logged); a notificationUUID seen before is a no-op; other types are acknowledged.
    A 400 (bad signature, another app or environment) or a 5xx makes Apple retry.
    """
    with answering_apple_errors("signedPayload"):
        notification = await runtime.storekit.verify_notification(body.signed_payload)
    transaction = notification.transaction
    if notification.is_refund and transaction is None:
        raise ApiError(400, "invalid_request", "a refund without signedTransactionInfo",
                       field="signedPayload")
    result = await runtime.admin.apply_app_store_notification(
        notification.notification_uuid, notification.notification_type,
        subtype=notification.subtype,
        transaction_id=transaction.transaction_id if transaction else None,
        signed_at=notification.signed_date)
    log.info("App Store notification %s %s: %s%s", notification.notification_uuid,
             notification.notification_type, result.outcome,
             " (repeat)" if result.already_processed else "")
    return NotificationReceipt(already_processed=result.already_processed,
                               outcome=result.outcome)
