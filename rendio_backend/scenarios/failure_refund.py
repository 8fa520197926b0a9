"""`failure-refund`: the provider fails a paid job; the client sees a generic reason and
the credits come back exactly once.

The failure is triggered by `SimulationOptions.failure_prompt`, by default the local fake
providers' `[fake:fail]` directive; against a real provider pass a prompt it refuses.
"""

from __future__ import annotations

from ..models import CreditReason, JobStatus
from ._context import Context, describe
from ._report import Recorder

NAME = "failure-refund"
SUMMARY = "a provider failure is reported and refunded exactly once"


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    cost = model.cost_per_generation
    app = await ctx.guest(credits=cost)
    job = await app.generate_video(model.id, ctx.options.failure_prompt)
    rec.equal("generate-video (the provider will fail it)", f"charged {cost}, balance 0",
              f"charged {job.credits_used}, balance {job.credits_remaining}")
    ctx.say(f"waiting for job {job.job_id} to fail")
    status = await ctx.wait_for(app, job.job_id)
    rec.check("the job fails with a reason for the app", "failed (a failure code)",
              describe(status),
              status.status is JobStatus.FAILED and status.failure is not None)
    rec.equal("balance after the failure", cost, (await app.get_balance()).credits_remaining)
    history = (await app.credit_history(limit=10)).items
    refunds = [row.change for row in history if row.job_id == job.job_id
               and row.reason is CreditReason.GENERATION_FAILED_REFUND]
    rec.equal("refunds of the job in the ledger", [cost], refunds)
    rec.check("no signed URLs for a failed job", "none",
              "none" if status.video_url is None and status.thumbnail_url is None else "some",
              status.video_url is None and status.thumbnail_url is None)
