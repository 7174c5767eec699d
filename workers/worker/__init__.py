"""The Celery side of a worker process: its tasks, serving a request on an engine, which models
stay resident (and which are evicted), the outbox of stream events, the heartbeat, the device
the process is pinned to, and the runtime that holds them together.

It runs only in worker processes; the web process never imports it.
"""
