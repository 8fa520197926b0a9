"""`apple-link`: a guest links Sign in with Apple and keeps its credits and jobs; the same
Apple ID signing in on a second device is the same user and sees them.

Only Apple issues id_tokens: the issuer is injected (`SimulationOptions.apple_id_tokens`;
`rendio simulate` passes the local stack's fake issuer), else the flow is skipped.
"""

from __future__ import annotations

import secrets
import uuid

from ._context import Context
from ._report import Recorder, Skip

NAME = "apple-link"
SUMMARY = "guest → Sign in with Apple: credits and jobs kept, a second device sees them"


async def run(ctx: Context, rec: Recorder) -> None:
    mint = ctx.options.apple_id_tokens
    if mint is None:
        raise Skip("needs Apple id_tokens, which only Apple issues "
                   "(the local stack's fake issuer makes them)")
    model = await ctx.model()
    cost = model.cost_per_generation
    guest = await ctx.guest(credits=cost + 3)
    job = await guest.generate_video(model.id, ctx.options.prompt)
    guest_id = guest.user_id
    sub = f"sim-apple-{uuid.uuid4().hex[:12]}"
    nonce = secrets.token_urlsafe(16)
    session = await guest.link_apple(mint(sub, nonce), nonce)
    rec.equal("link Apple to the guest", f"user {guest_id}, not anonymous",
              f"user {session.user_id}, {'anonymous' if session.is_anonymous else 'not anonymous'}")
    profile = await guest.get_profile()
    rec.equal("profile after linking", "not a guest, balance 3",
              f"{'a guest' if profile.is_guest else 'not a guest'}, "
              f"balance {profile.credits_remaining}")

    device = ctx.client()
    nonce = secrets.token_urlsafe(16)
    second = await device.sign_in_with_apple(mint(sub, nonce), nonce)
    rec.equal("a second device signs in with Apple", f"user {guest_id}", f"user {second.user_id}")
    rec.equal("its balance", 3, (await device.get_balance()).credits_remaining)
    jobs = [str(item.job_id) for item in (await device.video_jobs(limit=5)).items]
    rec.equal("its jobs", f"job {job.job_id}", ", ".join(f"job {j}" for j in jobs) or "none")
