-- Storage policies. Buckets videos, thumbnails and user_uploads are private
-- and provisioned through the Storage API (not here). Every object lives under
-- {user_id}/...: the first folder of its name must be the caller's id.
-- videos and thumbnails are written only by the service role (which bypasses RLS);
-- users write only to user_uploads (images for image-to-video).

-- Users read their own objects in the three buckets.
create policy rendio_read_own_objects on storage.objects
    for select to authenticated
    using (
        bucket_id in ('videos', 'thumbnails', 'user_uploads')
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

-- Users upload their own images.
create policy rendio_insert_own_uploads on storage.objects
    for insert to authenticated
    with check (
        bucket_id = 'user_uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

-- Users replace their own images (upsert); the object must stay theirs.
create policy rendio_update_own_uploads on storage.objects
    for update to authenticated
    using (
        bucket_id = 'user_uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    )
    with check (
        bucket_id = 'user_uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

-- Users delete their own images (through the Storage API).
create policy rendio_delete_own_uploads on storage.objects
    for delete to authenticated
    using (
        bucket_id = 'user_uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );
