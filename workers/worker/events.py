"""Publishing a request's events (``workers.broker.wire``) to its Redis stream, from a worker.

``EventPublisher`` appends them one round trip at a time; ``BackgroundPublisher`` hands them to
the process's ``Outbox`` thread, so that an engine never waits on Redis.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from workers.broker import keys
from workers.broker.wire import STREAM_TTL_SECONDS, Delta, Event, ToolDelta, encode

log = logging.getLogger(__name__)

# A stream's time to live is set again at most every _TTL_REFRESH_SECONDS, not with every
# token: a command less per token and request.
_TTL_REFRESH_SECONDS = 60


class EventPublisher:
    """Appends events to one request's stream. Used by a worker thread."""

    def __init__(self, client: redis.Redis, request_id: str) -> None:
        self.client = client
        self._stream = keys.request_stream(request_id)
        self._cancel = keys.cancel_flag(request_id)
        self._claim = keys.request_claim(request_id)
        self._refresh_ttl_at = 0.0  # monotonic time after which the next append sets the TTL

    def publish(self, event: Event) -> bool:
        """Append ``event``; returns False when the client has asked to cancel.

        Both travel in one round trip, so the check costs nothing extra per token.
        """
        pipe = self.client.pipeline(transaction=False)
        self.queue_on(pipe, [event])
        return not pipe.execute()[-1]

    def queue_on(self, pipe: Any, events: list[Event]) -> int:
        """Add the commands that append ``events`` (and then read the cancel flag, the last
        reply) to ``pipe``; returns how many replies they will have."""
        for event in events:
            pipe.xadd(self._stream, {"e": encode(event)})
        replies = len(events) + 1
        now = time.monotonic()
        if now >= self._refresh_ttl_at:
            self._refresh_ttl_at = now + _TTL_REFRESH_SECONDS
            pipe.expire(self._stream, STREAM_TTL_SECONDS)
            replies += 1
        pipe.exists(self._cancel)
        return replies

    def cancelled(self) -> bool:
        return bool(self.client.exists(self._cancel))

    def claim(self, instance: str) -> bool:
        """True for the first delivery of this request to ask, False for any later one."""
        return bool(self.client.set(self._claim, instance, nx=True, ex=STREAM_TTL_SECONDS))


_END = object()


class BackgroundPublisher:
    """Lets the engine hand events over without waiting on Redis.

    The engine thread calls ``emit`` (a queue put, and a flag read: it returns False once the
    client has cancelled); the process's ``Outbox`` thread does the round trips, and the
    request's task thread waits in ``pump`` until the last event is out. ``on_cancel`` names
    what to call when the outbox finds the client's cancel flag (the engine request's
    ``Cancellation``).
    """

    def __init__(self, publisher: EventPublisher) -> None:
        self.publisher = publisher
        self._outbox = outbox()
        self._cancelled = threading.Event()
        self._closed = False
        self._sent = threading.Event()  # the last event is out (or could not go)
        self._failure: BaseException | None = None
        self._on_cancel: Callable[[], None] | None = None

    def on_cancel(self, callback: Callable[[], None]) -> None:
        self._on_cancel = callback

    def emit(self, event: Event) -> bool:
        self._outbox.put(self, event)
        return not self._cancelled.is_set()

    def close(self) -> None:
        """No more events: ``pump`` returns once the queued ones are out."""
        self._closed = True
        self._outbox.put(self, _END)

    def pump(self, finished: threading.Event) -> None:
        """Wait until every event is out after ``close`` (or until ``finished`` is set without
        ``close``, for a job that never ran); raises what kept them from going out."""
        while not self._sent.wait(0.5):
            if finished.is_set() and not self._closed:
                return
        if self._failure is not None:
            raise self._failure

    def delivered(self, cancelled: bool) -> None:
        """The outbox got the events through; ``cancelled``: the client has asked to stop."""
        if cancelled:
            self._cancelled.set()
            if self._on_cancel is not None:
                self._on_cancel()

    def ended(self, failure: BaseException | None = None) -> None:
        self._failure = failure
        self._sent.set()


class Outbox:
    """The one thread of a worker process that sends every request's events to Redis.

    Whatever the engines emitted while the last round trip was out goes in the next one: one
    pipeline for all requests, their consecutive deltas merged into one event each. Eight
    sequences decoding together cost one round trip and one thread wake-up a step, instead of
    eight of each competing with the decode for the CPU.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[BackgroundPublisher, object]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="event-outbox", daemon=True)
        self._thread.start()

    def put(self, sender: BackgroundPublisher, event: object) -> None:
        self._queue.put((sender, event))

    def _loop(self) -> None:
        while True:
            waiting = [self._queue.get()]
            while True:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            by_client: dict[int, dict[BackgroundPublisher, list[object]]] = {}
            for sender, event in waiting:
                senders = by_client.setdefault(id(sender.publisher.client), {})
                senders.setdefault(sender, []).append(event)
            for senders in by_client.values():
                self._send(senders)

    def _send(self, senders: dict[BackgroundPublisher, list[object]]) -> None:
        """One pipeline for every sender's events (all on one Redis client)."""
        try:
            first = next(iter(senders))
            pipe = first.publisher.client.pipeline(transaction=False)
            replies: list[tuple[BackgroundPublisher, int]] = []  # sender, replies it has
            for sender, events in senders.items():
                merged = _coalesce(e for e in events if isinstance(e, Event))
                replies.append((sender, sender.publisher.queue_on(pipe, merged) if merged else 0))
            results = pipe.execute()
        except Exception as exc:  # Redis gone: every request here has lost its stream
            log.exception("publishing events failed")
            for sender in senders:
                sender.ended(exc)
            return
        offset = 0
        for sender, count in replies:
            if count:
                offset += count
                sender.delivered(bool(results[offset - 1]))
            if _END in senders[sender]:
                sender.ended()


_outbox: Outbox | None = None
_outbox_pid = 0
_outbox_lock = threading.Lock()


def outbox() -> Outbox:
    """This process's ``Outbox``, started on first use (after any fork)."""
    global _outbox, _outbox_pid
    with _outbox_lock:
        if _outbox is None or _outbox_pid != os.getpid():
            _outbox, _outbox_pid = Outbox(), os.getpid()
        return _outbox


def _coalesce(events: Iterable[Event]) -> list[Event]:
    merged: list[Event] = []
    for event in events:
        joined = _joined(merged[-1], event) if merged else None
        if joined is None:
            merged.append(event)
        else:
            merged[-1] = joined
    return merged


def _joined(last: Event, event: Event) -> Event | None:
    """``last`` and ``event`` as one event, when they can be."""
    if isinstance(event, Delta) and isinstance(last, Delta):
        return last.merged(event)
    if isinstance(event, ToolDelta) and isinstance(last, ToolDelta):
        return last.merged(event)
    return None
