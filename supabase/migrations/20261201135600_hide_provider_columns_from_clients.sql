-- Clients read their jobs without the provider's bookkeeping: ids, queue URLs, raw
-- error text and the worker's lease stay server-side (the HTTP API gives a client-safe
-- failure reason instead). Column privileges, so /rest/v1/video_jobs?select=* is
-- refused and clients name the columns they may read.

revoke select on table public.video_jobs from authenticated;
grant select (job_id, user_id, model_id, prompt, settings, status, video_url, thumbnail_url,
              credits_used, deadline_at, started_at, created_at, updated_at, completed_at,
              deleted_at)
    on table public.video_jobs to authenticated;
