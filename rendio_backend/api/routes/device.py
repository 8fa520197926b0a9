"""`POST /device/check`: verify a device with Apple DeviceCheck and grant the initial
credits once per device.

A device that claimed before gets nothing, however it comes back: its DeviceCheck bit 0
(kept by Apple, so it survives a reinstall that changes identifierForVendor), or its
device id bound to or claimed by another user. Otherwise `grant_initial_credits` (once
per user and device, atomic in SQL) and then bit 0 is set. Apple is asked first, so
when it is unreachable nothing is granted (503). If setting the bit fails after a
grant, the answer is 503 and a retry sets it (the claim is already this user's).
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from fastapi import APIRouter

from ...errors import NotFound
from ...models import DeviceCheckResult, DeviceClaim, User
from ..runtime import Runtime
from ..schemas import DeviceCheckRequest, error_responses
from ..security import CurrentCaller, CurrentRuntime
from ._apple import answering_apple_errors

router = APIRouter(tags=["credits"])

_ERRORS = error_responses(400, 401, 413, 503)


async def _claim(runtime: Runtime, device_id: str) -> DeviceClaim | None:
    try:
        return await runtime.admin.get_device_claim(device_id)
    except NotFound:
        return None


async def _holder(runtime: Runtime, device_id: str) -> User | None:
    try:
        return await runtime.admin.get_user_by_device_id(device_id)
    except NotFound:
        return None


async def _claim_for(runtime: Runtime, user_id: UUID, device_id: str, token: str) -> bool:
    """Grant unless the device is another user's; True when credits were granted."""
    claim, holder = await asyncio.gather(_claim(runtime, device_id),
                                         _holder(runtime, device_id))
    if (holder is not None and holder.id != user_id) or (
            claim is not None and claim.first_user_id != user_id):
        return False
    # grant_initial_credits records the device's claim even when it grants nothing (the
    # user claimed on another device), so bit 0 mirrors that claim. A claim already
    # ours with bit 0 unset means an earlier call failed between the two: finish it.
    granted = claim is None and await runtime.admin.grant_initial_credits(user_id, device_id)
    with answering_apple_errors("device_token"):
        await runtime.devicecheck.update_two_bits(token, bit0=True)
    return granted


@router.post("/device/check", response_model=DeviceCheckResult, responses=_ERRORS)
async def check_device(
    body: DeviceCheckRequest,
    caller: CurrentCaller,
    runtime: CurrentRuntime,
) -> DeviceCheckResult:
    """Claim the initial credits for this device: `granted` says whether this call did.

    400 when Apple refuses the device token; 503 `upstream_unavailable` when Apple is
    unreachable (nothing granted).
    """
    with answering_apple_errors("device_token"):
        bits = await runtime.devicecheck.query_two_bits(body.device_token)
    granted = False
    if not bits.bit0:
        granted = await _claim_for(runtime, caller.user_id, body.device_id, body.device_token)
    user = await runtime.admin.get_user(caller.user_id)
    return DeviceCheckResult(granted=granted, credits_remaining=user.credits_remaining)
