"""`generate`: a paid job runs to completed; its video and thumbnail are downloaded through
their signed URLs and decoded, as the app's player would."""

from __future__ import annotations

from ._context import Context, decode_image, decode_video, describe, error_text
from ._report import Recorder

NAME = "generate"
SUMMARY = "a paid generation to completed; video and thumbnail downloaded and decoded"


async def run(ctx: Context, rec: Recorder) -> None:
    model = await ctx.model()
    cost = model.cost_per_generation
    app = await ctx.guest(credits=cost)
    job = await app.generate_video(model.id, ctx.options.prompt)
    rec.equal(f"generate-video with {model.name}", f"202 pending, {cost} credits charged",
              f"{job.status_code} {job.status.value}, {job.credits_used} credits charged")
    rec.equal("balance after the charge", 0, job.credits_remaining)
    ctx.say(f"waiting for job {job.job_id}")
    status = await ctx.wait_for(app, job.job_id)
    timeout = ctx.options.job_timeout
    if not rec.equal(f"completed within {timeout:g} s", "completed", describe(status)):
        return
    for name, url, decode, what in (
            ("video", status.video_url, decode_video, "an MP4 that decodes"),
            ("thumbnail", status.thumbnail_url, decode_image, "a JPEG that decodes")):
        if url is None:
            rec.check(f"{name} through its signed URL", what, "no signed URL", False)
            continue
        try:
            observed, ok = decode(await ctx.fetch(url)), True
        except Exception as exc:  # a download or decoding failure is the observation
            observed, ok = error_text(exc), False
        rec.check(f"{name} through its signed URL", what, observed, ok)
    if status.video_url:
        rec.report.links["video"] = status.video_url
    listed = [item for item in (await app.video_jobs(limit=5)).items
              if item.job_id == job.job_id]
    rec.equal("get-video-jobs lists it", "completed",
              listed[0].status.value if listed else "missing")
    rec.equal("final balance", 0, (await app.get_balance()).credits_remaining)
