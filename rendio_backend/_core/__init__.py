"""The facades' pure logic: no I/O (except reading the catalog file), one module a concern.

- `arguments`: caller arguments checked and converted (UUIDs, credit reasons, intervals)
- `idempotency`: canonical JSON, request fingerprints, idempotency keys, the retry policy
- `paging`: keyset cursors and page sizes
- `storage`: the app's buckets, object keys and paths, the bucket diff
- `catalog`: the model catalog file, its models and the catalog diff
- `responses`: the shapes PostgREST, the SQL functions and Storage answer with
- `tokens`: what a JWT says, read without verifying it
- `settings`: a model's generation settings as a JSON Schema, and their check

Shared by the sync and async facades, so both stay thin and this is tested without a
stack.
"""
