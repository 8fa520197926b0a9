"""The generation pipeline: providers, the worker, webhooks, media and refunds.

Async by nature (a worker runs many jobs at once), so it lives here and never under
`_async/`. It calls the database only through the library's facades (service role).
"""
