"""Celery tasks of the worker processes. Arguments are ids and JSON, never pickles.

Web sends these by name (``send_task``), so the web process never imports this module, and
with it llama.cpp.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

GENERATE = "herd.generate"
EMBED = "herd.embed"
BATCH_LINE = "herd.batch_line"
EXPIRE_BATCHES = "herd.expire_batches"
REAP_DEAD_WORKERS = "herd.reap_dead_workers"


@shared_task(name=GENERATE, acks_late=True, ignore_result=True)
def generate(request_id: str, spec: dict[str, Any], payload: dict[str, Any]) -> None:
    from workers.inference import serve_generation

    serve_generation(request_id, spec, payload)


@shared_task(name=EMBED, acks_late=True, ignore_result=True)
def embed(request_id: str, spec: dict[str, Any], payload: dict[str, Any]) -> None:
    from workers.inference import serve_embeddings

    serve_embeddings(request_id, spec, payload)


@shared_task(name=BATCH_LINE, ignore_result=True)
def batch_line(line_id: int) -> None:
    # Acknowledged on receipt: the line itself (RUNNING, with this worker's instance) is the
    # record of who holds it, and beat sends it again if this worker dies.
    from workers.batch import start_batch_line

    start_batch_line(line_id)


@shared_task(name=EXPIRE_BATCHES, ignore_result=True)
def expire_batches() -> None:
    from inference_app.batches.services import expire_overdue_batches

    expire_overdue_batches()


@shared_task(name=REAP_DEAD_WORKERS, ignore_result=True)
def reap_dead_workers() -> None:
    """Work held by a worker whose heartbeat stopped goes back to the queues, work waiting in
    its lanes moves to live workers, lines whose messages the broker lost are found, and lines
    handed back are sent again."""
    from inference_app.batches.services import requeue_lines_of_dead_workers, top_up_all_batches
    from workers.heartbeat import live_workers
    from workers.reroute import release_lost_lines, reroute_from_dead_workers
    from workers.runtime import runtime

    workers = live_workers(runtime().redis)
    requeue_lines_of_dead_workers({w.get("instance", "") for w in workers})
    reroute_from_dead_workers(runtime().redis, {w["name"] for w in workers})
    release_lost_lines(runtime().redis, settings.HERD_LOST_LINE_AFTER)
    top_up_all_batches()
