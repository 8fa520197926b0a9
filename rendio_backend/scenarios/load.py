"""`load`: N users generate at once (C requests in flight at most), every job completes,
then the ledger is verified for every user (`verify_ledger`, the service role)."""

from __future__ import annotations

import asyncio
from collections import Counter

from ..client import AsyncRendioClient
from ..models import JobCreated, VideoStatus
from ._context import Context, describe
from ._report import Recorder

NAME = "load"
SUMMARY = "N users generating concurrently, then the ledger verified"


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    cost = model.cost_per_generation
    users = max(1, ctx.options.users)
    gate = asyncio.Semaphore(max(1, ctx.options.concurrency))
    done = 0

    async def one() -> tuple[AsyncRendioClient, JobCreated]:
        async with gate:
            app = await ctx.guest(credits=cost)
            return app, await app.generate_video(model.id, ctx.options.prompt)

    async def finish(app: AsyncRendioClient, job: JobCreated) -> VideoStatus:
        nonlocal done
        status = await ctx.wait_for(app, job.job_id)
        done += 1
        ctx.say(f"{done}/{users} jobs finished")
        return status

    ctx.say(f"{users} users signing in and generating")
    started = await asyncio.gather(*(one() for _ in range(users)), return_exceptions=True)
    jobs = [result for result in started if not isinstance(result, BaseException)]
    errors = Counter(type(r).__name__ for r in started if isinstance(r, BaseException))
    rec.check(f"{users} users generate at once (≤ {ctx.options.concurrency} in flight)",
              f"{users} accepted", f"{len(jobs)} accepted"
              + (f", {dict(errors)}" if errors else ""), len(jobs) == users)
    statuses = await asyncio.gather(*(finish(app, job) for app, job in jobs))
    outcomes = Counter(describe(status) for status in statuses)
    rec.equal(f"all completed within {ctx.options.job_timeout:g} s",
              f"{len(jobs)} completed", ", ".join(f"{n} {what}" for what, n in outcomes.items()))
    balances = await asyncio.gather(*(app.get_balance() for app, _ in jobs))
    charged = Counter(cost - balance.credits_remaining for balance in balances)
    rec.equal("each user charged once", f"{len(jobs)} × {cost}",
              ", ".join(f"{n} × {c}" for c, n in charged.items()))
    violations = await ctx.admin.verify_ledger()
    rec.equal("verify_ledger() for every user", "no violation",
              "no violation" if not violations else
              "; ".join(f"{v.invariant}: {v.detail}" for v in violations[:3]))
