"""Send work waiting in the lanes of a dead worker to live ones (beat runs this).

Each worker consumes only its own lanes, so requests queued for a worker that died would wait
for a worker of that name to come back. An interactive request moves to the worker now best
placed for its model, keeping its place ahead of newer work; a batch line goes back to PENDING
and is sent again. A request taken twice this way runs once: workers claim request ids.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from inference_app.batches.models import BatchLine, LineStatus
from workers import keys
from workers.placement import NoWorker, choose_worker
from workers.queues import list_key, message_args

log = logging.getLogger(__name__)


def _lanes(client: redis.Redis, kind: str) -> dict[str, str]:
    """Worker name -> Redis list of its non-empty ``kind`` lanes."""
    pattern = list_key(
        keys.interactive_lane("*") if kind == "interactive" else keys.batch_lane("*")
    )
    prefix, suffix = pattern.split("*")
    found = {}
    for raw in client.scan_iter(match=pattern):
        key = raw.decode()
        found[key[len(prefix) : len(key) - len(suffix)]] = key
    return found


def reroute_from_dead_workers(client: redis.Redis, live: set[str]) -> int:
    """Move what waits for workers not in ``live``; returns how many messages moved."""
    moved = 0
    for worker, key in _lanes(client, "interactive").items():
        if worker not in live:
            moved += _move_interactive(client, key)
    for worker, key in _lanes(client, "batch").items():
        if worker not in live:
            moved += _release_batch(client, key)
    return moved


def _move_interactive(client: redis.Redis, key: str) -> int:
    moved = 0
    # Newest first (the left end), each pushed onto the right end of its new lane: the oldest
    # ends up rightmost, taken first.
    messages: Any = client.lrange(key, 0, -1)
    for raw in messages:
        args = message_args(raw)
        spec = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        try:
            target = choose_worker(client, str(spec.get("name", "")), 0)
        except NoWorker:
            return moved  # nobody to give it to: leave the rest where it is
        if client.lrem(key, 1, raw):
            client.rpush(list_key(keys.interactive_lane(target.name)), raw)
            moved += 1
    if moved:
        log.info("moved %d waiting requests out of %s", moved, key)
    return moved


def _release_batch(client: redis.Redis, key: str) -> int:
    messages: Any = client.lrange(key, 0, -1)
    line_ids = [int(args[0]) for args in map(message_args, messages) if args]
    client.delete(key)
    released = BatchLine.objects.filter(pk__in=line_ids, status=LineStatus.QUEUED).update(
        status=LineStatus.PENDING
    )
    if released:
        log.info("sent %d batch lines of %s back to pending", released, key)
    return released
