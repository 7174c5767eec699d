"""Fair turns between keys sharing a worker's interactive lane.

A request's turn is its place among the requests of the same key (the "sharer") waiting for
the same worker: the first waiting request of every key goes before the second of any key,
and so on. A key with 100 requests queued therefore delays another key's single request by
at most one of its own, not by all 100.

Two places keep that order. The lane itself: Celery's Redis transport keeps one list per
priority level and workers take from the lowest level first, so the web sends a request at
the level of its turn (levels stop at ``LEVELS - 1``; deeper turns wait in arrival order).
The engine: requests a worker has already taken wait in its queue ordered by the same turn
(``workers.engine.jobs``). Requests without a key (authentication off) all take turn 0: arrival
order.

Each worker keeps, per key, a sorted set of the ids of that key's requests waiting for it,
scored by when they were sent; the worker removes an id when it starts the request, and ids
older than ``HERD_QUEUE_TIMEOUT`` (requests that expired unanswered) no longer count.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings

# Celery priority levels for the Redis transport (project.settings sets them as its
# ``priority_steps``): 0 is taken first.
LEVELS = 10


def waiting_set(worker_name: str, sharer: str) -> str:
    """The sorted set of ``sharer``'s requests waiting for ``worker_name``."""
    return f"{settings.HERD_NAMESPACE}:fair:{worker_name}:{sharer}"


def take_turn(client: redis.Redis, worker_name: str, sharer: str, request_id: str) -> int:
    """Count ``request_id`` among ``sharer``'s requests waiting for the worker, and return its
    turn: how many of them were already waiting (one round trip)."""
    now = time.time()
    timeout = float(settings.HERD_QUEUE_TIMEOUT)
    key = waiting_set(worker_name, sharer)
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", now - timeout)
    pipe.zcard(key)
    pipe.zadd(key, {request_id: now})
    pipe.expire(key, int(timeout) + 1)
    replies: Any = pipe.execute()
    return int(replies[1])


def level_of(turn: int) -> int:
    return min(turn, LEVELS - 1)


def leave_queue(client: redis.Redis, waiting_set: str | None, request_id: str) -> None:
    """The worker started ``request_id``, which waited in ``waiting_set`` (the payload's):
    it no longer waits (no-op for requests sent without a key)."""
    if waiting_set:
        client.zrem(waiting_set, request_id)
