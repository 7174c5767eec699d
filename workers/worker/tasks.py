"""Celery tasks of the worker processes. Arguments are ids and JSON, never pickles: the
payloads of ``workers.broker.wire``, decoded here into their types.

Web sends these by name (``send_task``), so the web process never imports this module, and
with it llama.cpp. The worker command imports it before the worker starts consuming.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from inference_app.batches.services import (
    expire_overdue_batches,
    requeue_lines_of_dead_workers,
    top_up_all_batches,
)
from workers.broker.registry import live_workers
from workers.broker.reroute import release_lost_lines, reroute_from_dead_workers
from workers.broker.wire import (
    BATCH_LINE,
    EMBED,
    EXPIRE_BATCHES,
    GENERATE,
    REAP_DEAD_WORKERS,
    EmbeddingsPayload,
    GenerationPayload,
    ModelSpec,
)
from workers.worker.batch import start_batch_lines
from workers.worker.inference import serve_embeddings, serve_generation
from workers.worker.runtime import runtime


@shared_task(name=GENERATE, acks_late=True, ignore_result=True)
def generate(request_id: str, spec: dict[str, Any], payload: dict[str, Any]) -> None:
    serve_generation(request_id, ModelSpec.from_json(spec), GenerationPayload.from_json(payload))


@shared_task(name=EMBED, acks_late=True, ignore_result=True)
def embed(request_id: str, spec: dict[str, Any], payload: dict[str, Any]) -> None:
    serve_embeddings(request_id, ModelSpec.from_json(spec), EmbeddingsPayload.from_json(payload))


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
    handed back are sent again."""
    client = runtime().redis
    workers = live_workers(client)
    requeue_lines_of_dead_workers({w.get("instance", "") for w in workers})
    reroute_from_dead_workers(client, {w["name"] for w in workers})
    release_lost_lines(client, settings.HERD_LOST_LINE_AFTER)
    top_up_all_batches()
