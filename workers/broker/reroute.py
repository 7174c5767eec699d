"""Send work waiting in the lanes of a dead worker to live ones (beat runs this).

Each worker consumes only its own lanes, so requests queued for a worker that died would wait
for a worker of that name to come back. An interactive request moves to the worker now best
placed for its model, keeping its place ahead of newer work. A batch line's message is taken
out of the dead worker's lane and its line handed back to the batch app, which sends it again
(``inference_app.batches.recovery``): this module reads and writes the broker only, never a
batch row. A request taken twice this way runs once: workers claim request ids.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from workers.broker import keys
from workers.broker.placement import NoWorker, choose_worker
from workers.broker.queues import list_key, message_args, queue_of_list

log = logging.getLogger(__name__)


def _lanes(client: redis.Redis, kind: str) -> dict[str, list[str]]:
    """Worker name -> the Redis lists (one per priority level) of its non-empty ``kind``
    lanes."""
    lane = keys.interactive_lane("*") if kind == "interactive" else keys.batch_lane("*")
    prefix, suffix = list_key(lane).split("*")
    found: dict[str, list[str]] = {}
    for raw in client.scan_iter(match=list_key(lane) + "*"):
        key = raw.decode()
        queue, _level = queue_of_list(key)
        if not queue.endswith(suffix):
            continue  # a longer lane name that merely starts like this one
        worker = key[len(prefix) :].split(suffix)[0]
        found.setdefault(worker, []).append(key)
    return found


def reroute_from_dead_workers(client: redis.Redis, live: set[str]) -> int:
    """Move the requests waiting for workers not in ``live`` to live workers; returns how many
    messages moved."""
    moved = 0
    for worker, lists in _lanes(client, "interactive").items():
        if worker not in live:
            moved += sum(_move_interactive(client, key) for key in lists)
    return moved


def take_dead_batch_lanes(client: redis.Redis, live: set[str]) -> list[int]:
    """Empty the batch lanes of workers not in ``live``; returns the ids of the lines their
    messages carried, for the batch app to send again."""
    line_ids: list[int] = []
    for worker, lists in _lanes(client, "batch").items():
        if worker in live:
            continue
        for key in lists:
            messages: Any = client.lrange(key, 0, -1)
            client.delete(key)
            line_ids += _line_ids(messages)
            if messages:
                log.info("took %d batch messages out of %s", len(messages), key)
    return line_ids


def _move_interactive(client: redis.Redis, key: str) -> int:
    moved = 0
    _queue, level = queue_of_list(key)
    # Newest first (the left end), each pushed onto the right end of its new lane (at the same
    # priority level): the oldest ends up rightmost, taken first.
    messages: Any = client.lrange(key, 0, -1)
    for raw in messages:
        args = message_args(raw)
        spec = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        try:
            target = choose_worker(client, str(spec.get("name", "")), 0)
        except NoWorker:
            return moved  # nobody to give it to: leave the rest where it is
        if client.lrem(key, 1, raw):
            client.rpush(list_key(keys.interactive_lane(target.name), level), raw)
            moved += 1
    if moved:
        log.info("moved %d waiting requests out of %s", moved, key)
    return moved


def lines_with_messages(client: redis.Redis, held_since: float) -> set[int]:
    """Ids of the batch lines whose messages wait in a batch lane or were delivered to a worker
    after ``held_since`` (a Unix time) and are not yet acknowledged.

    The Redis transport moves a message from its list into the unacknowledged set in two steps,
    and scores each delivery tag in its index with the time of delivery: the batch app looks
    for QUEUED lines that are in neither place (``inference_app.batches.recovery``)."""
    raw_messages: list[bytes] = []
    for lists in _lanes(client, "batch").values():
        for key in lists:
            waiting: Any = client.lrange(key, 0, -1)
            raw_messages += waiting
    recent: Any = client.zrangebyscore(list_key("unacked_index"), held_since, "+inf")
    held: Any = client.hmget(list_key("unacked"), recent) if recent else []
    for entry in held:
        if entry is None:
            continue  # acknowledged since the index was read
        try:
            raw_messages.append(json.dumps(json.loads(entry)[0]).encode())
        except (ValueError, IndexError, TypeError):
            continue
    return set(_line_ids(raw_messages))


def _line_ids(raw_messages: list[bytes]) -> list[int]:
    """The ids of the lines that batch-lines task messages carry."""
    ids: list[int] = []
    for raw in raw_messages:
        args = message_args(raw)
        if not args:
            continue
        # A message carries a list of lines (or, sent by an earlier version, one line).
        lines = args[0] if isinstance(args[0], list) else [args[0]]
        ids += [line for line in lines if isinstance(line, int)]
    return ids
