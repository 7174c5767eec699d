"""Send work waiting in the lanes of a dead worker to live ones (beat runs this).

Each worker consumes only its own lanes, so requests queued for a worker that died would wait
for a worker of that name to come back. An interactive request moves to the worker now best
placed for its model, keeping its place ahead of newer work; a batch line goes back to PENDING
and is sent again. A request taken twice this way runs once: workers claim request ids.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import redis
from django.db.models import Q
from django.utils import timezone

from inference_app.batches.models import BatchLine, BatchStatus, LineStatus
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
    """Move what waits for workers not in ``live``; returns how many messages moved."""
    moved = 0
    for worker, lists in _lanes(client, "interactive").items():
        if worker not in live:
            moved += sum(_move_interactive(client, key) for key in lists)
    for worker, lists in _lanes(client, "batch").items():
        if worker not in live:
            moved += sum(_release_batch(client, key) for key in lists)
    return moved


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


def release_lost_lines(client: redis.Redis, older_than: float) -> int:
    """Send back to PENDING the batch lines QUEUED over ``older_than`` seconds ago whose message
    is neither waiting in a batch lane nor held by a worker; returns how many.

    The Redis transport moves a message from its list into the unacknowledged set in two steps:
    a broker restart between them loses the message. A restart can also catch a delivery after
    it entered the unacknowledged set but before its task started: the worker drops it on the
    lost connection, and the set keeps it for the visibility timeout (an hour). Either way the
    line stays QUEUED with nothing to run it, so beat looks for such lines and hands them back
    to be sent again. A delivery's task claims its lines the moment it starts, so one held
    unacknowledged for over ``older_than`` seconds with its lines still QUEUED counts as lost.
    Should the message run after all, the two deliveries meet at the line's claim and one runs.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than)
    candidates = dict(
        BatchLine.objects.filter(status=LineStatus.QUEUED, batch__status=BatchStatus.IN_PROGRESS)
        .filter(Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True))
        .values_list("pk", "queued_at")
    )
    if not candidates:
        return 0
    lost = set(candidates) - _lines_with_messages(client, held_since=cutoff.timestamp())
    released = 0
    for line_id in lost:
        released += BatchLine.objects.filter(
            pk=line_id, status=LineStatus.QUEUED, queued_at=candidates[line_id]
        ).update(status=LineStatus.PENDING)
    if released:
        log.warning("%d queued batch lines had lost their messages; sending them again", released)
    return released


def _lines_with_messages(client: redis.Redis, held_since: float) -> set[int]:
    """Ids of the batch lines whose messages wait in a batch lane or were delivered to a worker
    after ``held_since`` (a Unix time) and are not yet acknowledged."""
    raw_messages: list[bytes] = []
    for lists in _lanes(client, "batch").values():
        for key in lists:
            waiting: Any = client.lrange(key, 0, -1)
            raw_messages += waiting
    # The transport scores each delivery tag in its index with the time of delivery.
    recent: Any = client.zrangebyscore(list_key("unacked_index"), held_since, "+inf")
    held: Any = client.hmget(list_key("unacked"), recent) if recent else []
    for entry in held:
        if entry is None:
            continue  # acknowledged since the index was read
        try:
            raw_messages.append(json.dumps(json.loads(entry)[0]).encode())
        except (ValueError, IndexError, TypeError):
            continue
    ids: set[int] = set()
    for raw in raw_messages:
        args = message_args(raw)
        if not args:
            continue
        # A message carries a list of lines (or, sent by an earlier version, one line).
        lines = args[0] if isinstance(args[0], list) else [args[0]]
        ids.update(line for line in lines if isinstance(line, int))
    return ids
