-- Nobody deletes video_jobs rows directly, not even the service role.
--
-- Deleting an unfinished job would keep its charge with nothing left to fail and
-- refund (and quota_log.job_id would be nulled, so verify_ledger could not see it).
-- Old jobs leave through archive_old_jobs(), a security definer function, and a user's
-- jobs go with the user (on delete cascade), which needs no grant.
revoke delete on table public.video_jobs from service_role;
