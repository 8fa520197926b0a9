"""`insufficient-credits`: a generation the balance cannot pay is refused (402 with the
amounts), charges nothing and makes no job."""

from __future__ import annotations

from ..errors import InsufficientCredits
from ._context import Context
from ._report import Recorder

NAME = "insufficient-credits"
SUMMARY = "a generation the balance cannot pay: 402, nothing charged, no job"


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    cost = model.cost_per_generation
    app = await ctx.guest()
    for available in (0, cost - 1):
        if available:
            await ctx.admin.add_credits(app.user_id, available)
        refused = await rec.refused(f"generate-video with {available} credits",
                                    "insufficient_credits",
                                    app.generate_video(model.id, ctx.options.prompt))
        if isinstance(refused, InsufficientCredits):
            rec.equal("the error says what is missing",
                      f"required {cost}, available {available}",
                      f"required {refused.required}, available {refused.available}")
        rec.equal("balance afterwards", available, (await app.get_balance()).credits_remaining)
    jobs = (await app.video_jobs(limit=5)).items
    rec.equal("jobs created", 0, len(jobs))
