"""Batch lines that lost their message go back to PENDING, for the batch to send them again.

Two ways a QUEUED line loses its message: its worker died with the message still waiting in
its batch lane (the broker's ``take_dead_batch_lanes`` empties such lanes and hands back their
lines), or the broker lost the message itself (``release_lost_lines``). Beat runs both
(``inference_app.batches.tasks``); ``top_up_all_batches`` then sends the lines again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from django.db.models import Q
from django.utils import timezone

from inference_app.batches.models import BatchLine, BatchStatus, LineStatus
from workers.broker.reroute import lines_with_messages, take_dead_batch_lanes

log = logging.getLogger(__name__)


def release_lines_of_dead_lanes(client: redis.Redis, live: set[str]) -> int:
    """Send back to PENDING the QUEUED lines whose messages waited in the batch lanes of
    workers not in ``live``; returns how many."""
    line_ids = take_dead_batch_lanes(client, live)
    if not line_ids:
        return 0
    released = BatchLine.objects.filter(pk__in=line_ids, status=LineStatus.QUEUED).update(
        status=LineStatus.PENDING
    )
    if released:
        log.info("sent %d batch lines of dead workers back to pending", released)
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
    lost = set(candidates) - lines_with_messages(client, held_since=cutoff.timestamp())
    released = 0
    for line_id in lost:
        released += BatchLine.objects.filter(
            pk=line_id, status=LineStatus.QUEUED, queued_at=candidates[line_id]
        ).update(status=LineStatus.PENDING)
    if released:
        log.warning("%d queued batch lines had lost their messages; sending them again", released)
    return released
