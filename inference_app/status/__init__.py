"""Where work stands: the queue status JSON (``/api/status``, ``/v1/status``) and the workers
page, read from the broker and the database."""
