"""Celery tasks of the batch app. They run in worker processes (the batch lanes and beat's
default queue are theirs), which find them by the Celery app's discovery (``project.celery``),
never by importing them: the worker imports no web code. Web and beat send them by name
(``workers.broker.wire``).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from inference_app.batches.recovery import release_lines_of_dead_lanes, release_lost_lines
from inference_app.batches.runner import start_batch_lines
from inference_app.batches.services import (
    expire_overdue_batches,
    requeue_lines_of_dead_workers,
    top_up_all_batches,
)
from project.broker import sync_client
from workers.broker.registry import live_workers
from workers.broker.reroute import reroute_from_dead_workers
from workers.broker.wire import BATCH_LINE, EXPIRE_BATCHES, REAP_DEAD_WORKERS


@shared_task(name=BATCH_LINE, ignore_result=True)
def batch_line(line_ids: list[int] | int) -> None:
    # Acknowledged on receipt: each line itself (RUNNING, with this worker's instance) is the
    # record of who holds it, and beat sends it again if this worker dies. One id alone: a
    # message sent by an earlier version, one line a message.
    start_batch_lines(line_ids if isinstance(line_ids, list) else [line_ids])


@shared_task(name=EXPIRE_BATCHES, ignore_result=True)
def expire_batches() -> None:
    expire_overdue_batches()


@shared_task(name=REAP_DEAD_WORKERS, ignore_result=True)
def reap_dead_workers() -> None:
    """Work held by a worker whose heartbeat stopped goes back to the queues, work waiting in
    its lanes moves to live workers, lines whose messages the broker lost are found, and lines
    handed back are sent again.

    The batch app runs it because most of that work is batch lines; the requests waiting in a
    dead worker's interactive lanes move in the same pass (the broker's
    ``reroute_from_dead_workers``)."""
    client = sync_client()
    workers = live_workers(client)
    live_names = {w["name"] for w in workers}
    requeue_lines_of_dead_workers({w.get("instance", "") for w in workers})
    reroute_from_dead_workers(client, live_names)
    release_lines_of_dead_lanes(client, live_names)
    release_lost_lines(client, settings.HERD_LOST_LINE_AFTER)
    top_up_all_batches()
