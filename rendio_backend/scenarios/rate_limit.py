"""`rate-limit`: a user with `max_jobs_in_flight` jobs pending or processing is told to
wait (429 with Retry-After) and charged nothing.

The jobs in flight use `SimulationOptions.slow_prompt` (by default the fake providers'
`[fake:latency-ms=1500]`), so they are still running when the extra request arrives.
"""

from __future__ import annotations

from ..errors import RateLimited
from ..models import JobStatus
from ._context import Context
from ._report import Recorder

NAME = "rate-limit"
SUMMARY = "jobs in flight over the user's limit: 429, nothing charged"


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    cost = model.cost_per_generation
    app = await ctx.guest()
    limit = (await app.get_profile()).max_jobs_in_flight
    await ctx.admin.add_credits(app.user_id, (limit + 1) * cost)
    for _ in range(limit):
        await app.generate_video(model.id, ctx.options.slow_prompt)
    in_flight = [job for job in (await app.list_jobs()).items
                 if job.status in (JobStatus.PENDING, JobStatus.PROCESSING)]
    rec.equal(f"{limit} jobs (the user's limit) in flight", f"{limit} in flight",
              f"{len(in_flight)} in flight")
    refused = await rec.refused(f"job {limit + 1} while {limit} are in flight", "rate_limited",
                                app.generate_video(model.id, ctx.options.slow_prompt))
    if isinstance(refused, RateLimited):
        retry_after = refused.details.get("retry_after")
        rec.check("the answer says when to retry", "a Retry-After in seconds",
                  f"retry after {retry_after} s", isinstance(retry_after, int | float))
    rec.equal("balance (the refused job charged nothing)", cost,
              (await app.get_balance()).credits_remaining)
