"""Read a request's events from its Redis stream, for web.

``RequestRelay.events()`` yields events as workers publish them and ends after the last one.
It never hangs on a lost worker: before a worker takes the request it waits at most
``HERD_QUEUE_TIMEOUT`` (and gives up at once when no worker is alive at all); after, it checks
the taking worker's heartbeat whenever the stream is quiet and ends with an error event when the
heartbeat is gone. ``cancel()`` tells the engine to stop; call it when the client has left.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings

from inference_app.stream_hub import QUIET, stream_hub
from project.broker import async_client, sync_client
from workers.broker import keys
from workers.broker.registry import instance_alive, live_workers
from workers.broker.wire import (
    FINAL_EVENTS,
    STREAM_TTL_SECONDS,
    Delta,
    Done,
    Embeddings,
    Error,
    Start,
    ToolDelta,
    decode,
    error_event,
)

# What ``events()`` yields: every event but ``Start``, which the relay keeps to itself.
RelayedEvent = Delta | ToolDelta | Done | Embeddings | Error


class RequestRelay:
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.worker: str | None = None
        self.instance = ""
        self.finished = False
        self._stream = keys.request_stream(request_id)

    async def events(self) -> AsyncIterator[RelayedEvent]:
        hub = stream_hub(async_client())
        follower = await hub.follow(self._stream)
        enqueued_at = time.monotonic()
        quiet_since = time.monotonic()
        try:
            while True:
                entries = await follower.get()
                if entries is QUIET:
                    lost = await self._lost_worker(enqueued_at, quiet_since)
                    if lost is not None:
                        self.finished = True
                        hub.unfollow(follower)
                        await self.cancel()
                        yield lost
                        return
                    continue
                quiet_since = time.monotonic()
                for _, fields in entries:
                    event = decode(fields[b"e"])
                    if isinstance(event, Start):
                        self.worker = event.worker
                        self.instance = event.instance
                        continue
                    if isinstance(event, FINAL_EVENTS):
                        self.finished = True
                        hub.unfollow(follower)  # now: the caller may never ask for more
                        yield event
                        return
                    yield event
        finally:
            hub.unfollow(follower)

    async def _lost_worker(self, enqueued_at: float, quiet_since: float) -> Error | None:
        """An error event when the request can no longer be served, else None."""
        client = async_client()
        ttl = float(settings.HERD_HEARTBEAT_TTL)
        if self.worker is not None:
            if time.monotonic() - quiet_since < ttl / 3:
                return None
            heartbeat: Any = await client.get(keys.worker_heartbeat(self.worker))
            if instance_alive(heartbeat, self.instance):
                return None
            return error_event(
                f"worker {self.worker} stopped while serving this request",
                status=503,
                type_="server_error",
                code="worker_lost",
            )
        waited = time.monotonic() - enqueued_at
        if waited > ttl and not live_workers(sync_client()):
            return error_event(
                "no worker is running to serve this model", status=503, code="no_worker"
            )
        if waited > float(settings.HERD_QUEUE_TIMEOUT):
            return error_event(
                "no worker took this request in time", status=503, code="queue_timeout"
            )
        return None

    async def cancel(self) -> None:
        await async_client().set(keys.cancel_flag(self.request_id), 1, ex=STREAM_TTL_SECONDS)

    def cancel_now(self) -> None:
        """Synchronous cancel, safe from a ``finally`` in a cancelled coroutine."""
        sync_client().set(keys.cancel_flag(self.request_id), 1, ex=STREAM_TTL_SECONDS)
