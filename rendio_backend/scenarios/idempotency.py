"""`idempotency`: a replayed request answers the same job, a key reused for another
request is refused, concurrent duplicates make one job; each charged once."""

from __future__ import annotations

import asyncio
import uuid

from ..errors import IdempotencyKeyInUse
from ..models import JobCreated
from ._context import Context
from ._report import Recorder

NAME = "idempotency"
SUMMARY = "replays, a reused key, concurrent duplicates: each request charged once"


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    cost = model.cost_per_generation
    app = await ctx.guest(credits=3 * cost)
    prompt = ctx.options.prompt
    key = uuid.uuid4()
    first = await app.generate_video(model.id, prompt, idempotency_key=key)
    replay = await app.generate_video(model.id, prompt, idempotency_key=key)
    rec.equal("the same request again (same Idempotency-Key)",
              f"job {first.job_id}, replayed",
              f"job {replay.job_id}, {'replayed' if replay.replayed else 'not replayed'}")
    rec.equal("balance after a request and its replay", 2 * cost,
              (await app.get_balance()).credits_remaining)
    await rec.refused("the same key with another prompt", "idempotency_key_reused",
                      app.generate_video(model.id, prompt + " (changed)",
                                         idempotency_key=key))

    duplicates = max(2, ctx.options.concurrency)
    other = uuid.uuid4()
    answers = await asyncio.gather(
        *(app.generate_video(model.id, prompt, idempotency_key=other)
          for _ in range(duplicates)), return_exceptions=True)
    jobs = {a.job_id for a in answers if isinstance(a, JobCreated)}
    # A duplicate may also be told the first is still running (409, retry later).
    busy = [a for a in answers if isinstance(a, IdempotencyKeyInUse)]
    errors = [f"{type(a).__name__}: {a}" for a in answers
              if isinstance(a, BaseException) and not isinstance(a, IdempotencyKeyInUse)]
    rec.check(f"{duplicates} concurrent duplicates", "one job, no error",
              f"{len(jobs)} job(s), {len(busy)} told to retry"
              + (f", errors: {'; '.join(errors)}" if errors else ""),
              len(jobs) == 1 and not errors)
    rec.equal("balance after the duplicates (charged once)", cost,
              (await app.get_balance()).credits_remaining)
