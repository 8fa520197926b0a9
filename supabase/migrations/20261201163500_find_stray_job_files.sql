-- Files a finished job stored but will never point at ("stray" files), found so the
-- service role can remove them through the Storage API.
--
-- A finisher uploads a job's video and thumbnail to paths fixed by the job id, then
-- completes the job. When the job is failed meanwhile (its deadline passed) the finisher
-- removes what it stored, but a finisher killed between its upload and that cleanup
-- leaves the files behind, and so does one that loses a race to a finisher that
-- completed the job without a thumbnail. Nothing would ever read or remove them.

-- The scan reads jobs by when they finished, so a sweep every minute touches only
-- the jobs of the last few minutes.
create index idx_video_jobs_finished_at on public.video_jobs (completed_at)
    where status in ('completed', 'failed');


-- Up to p_limit (1-1000) Storage objects at the fixed paths of jobs that finished
-- within p_within (> 0) and that the job does not hold: every file of a failed job, and
-- a completed job's file at its own path when the job recorded none or another path.
-- A job's recorded files are never returned, nor any file of an unfinished job.
-- Returns (bucket, object key, job id), oldest finish first.
-- Caller: service_role only (the workers' sweep and `rendio maintenance`).
create function public.stray_job_files(
    p_within interval default interval '1 hour',
    p_limit integer default 1000
)
returns table (bucket text, path text, job_id uuid)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
    if p_within is null or p_within <= interval '0' then
        raise exception using errcode = 'PT400', message = 'invalid_request',
            detail = jsonb_build_object('field', 'within', 'reason', 'must be > 0')::text;
    end if;
    return query
    select f.bucket, f.key, j.job_id
      from public.video_jobs j
     cross join lateral (values
         ('videos', j.user_id::text || '/' || j.job_id::text || '.mp4', j.video_url),
         ('thumbnails', j.user_id::text || '/' || j.job_id::text || '.jpg', j.thumbnail_url)
     ) f (bucket, key, recorded)
     where j.status in ('completed', 'failed')
       and j.completed_at > now() - p_within
       and (j.status = 'failed'
            or f.recorded is null
            -- Storage reads a recorded path without its leading slashes, so they too
            -- name the job's own file.
            or ltrim(f.recorded, '/') not in (f.key, f.bucket || '/' || f.key))
       and exists (select 1 from storage.objects o
                    where o.bucket_id = f.bucket and o.name = f.key)
     order by j.completed_at, f.bucket
     limit least(greatest(coalesce(p_limit, 1000), 1), 1000);
end;
$$;
revoke all on function public.stray_job_files(interval, integer) from public, anon, authenticated;
grant execute on function public.stray_job_files(interval, integer) to service_role;
comment on function public.stray_job_files(interval, integer) is
    'Stored files of recently finished jobs that the job does not hold. Caller: service_role.';
