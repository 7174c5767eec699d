"""Hand a validated request to the workers: one Celery message on the model's lane, at the
level of its turn among its key's waiting requests (``workers.broker.fairness``).

The model lookup and the publish happen in one hop to the sync thread: on the request path
every thread hop is a measurable part of the time to first token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings

from models_app.models import ModelRecord
from models_app.services import find_ready_model
from project.broker import sync_client
from project.celery import app
from project.edge.context import RequestContext
from project.errors import ServiceUnavailable
from workers.broker import keys
from workers.broker.fairness import level_of, take_turn, waiting_set
from workers.broker.placement import NoWorker, choose_worker
from workers.broker.wire import EMBED, GENERATE, ModelSpec, Payload

PayloadBuilder = Callable[[ModelRecord], Payload]


class Unavailable(ServiceUnavailable):
    """No worker can take the request now: answer 503 and ask the client to come back after
    ``HERD_RETRY_AFTER`` seconds."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=int(settings.HERD_RETRY_AFTER))


class LaneFull(Unavailable):
    """The chosen worker's interactive lane holds ``HERD_MAX_QUEUE`` requests already (it is
    the least busy that holds the model)."""

    code = "queue_full"


def send_task(
    task: str, request_id: str, spec: ModelSpec, payload: Payload, lane: str, level: int = 0
) -> None:
    app.send_task(
        task,
        args=(request_id, spec.to_json(), payload.to_json()),
        queue=lane,
        priority=level,
        # An interactive request nobody took in time has been answered with 503 already;
        # a worker that finds it later drops it.
        expires=None if payload.is_batch else settings.HERD_QUEUE_TIMEOUT,
    )


def _resolve_and_send(
    task: str,
    ctx: RequestContext,
    model_name: str,
    build_payload: PayloadBuilder,
    asked_id: str | None,
) -> tuple[ModelRecord, str]:
    record = find_ready_model(model_name)
    payload = build_payload(record)
    spec = record.to_spec()
    request_id = ctx.new_request_id(asked_id)
    try:
        worker = choose_worker(sync_client(), record.name, record.size, spec.pinned_to)
    except NoWorker:
        # None alive (the server is starting, say): the first worker up takes it; web answers
        # 503 if none comes within the heartbeat TTL.
        send_task(task, request_id, spec, payload, keys.unrouted_lane())
        return record, request_id
    if not payload.is_batch and worker.waiting >= settings.HERD_MAX_QUEUE:
        raise LaneFull(
            f"model '{record.name}' has {worker.waiting} requests waiting; try again shortly"
        )
    if payload.is_batch:
        send_task(task, request_id, spec, payload, keys.batch_lane(worker.name))
        return record, request_id
    level = 0
    sharer = ctx.sharer
    if sharer is not None:
        turn = take_turn(sync_client(), worker.name, sharer, request_id)
        # The worker takes the request out of its key's waiting set when it starts it.
        payload = dataclasses.replace(
            payload, sharer=sharer, waiting_set=waiting_set(worker.name, sharer)
        )
        level = level_of(turn)
    send_task(task, request_id, spec, payload, keys.interactive_lane(worker.name), level)
    return record, request_id


async def enqueue_generation(
    ctx: RequestContext,
    model_name: str,
    build_payload: PayloadBuilder,
    request_id: str | None = None,
) -> tuple[ModelRecord, str]:
    """Resolve ``model_name`` (raises ModelNotFound) and enqueue a generation for it, asked
    by ``ctx`` (raises Unavailable when no worker can take it now). ``request_id``: the
    client's own, which ``RequestContext.new_request_id`` takes when it is well formed."""
    return await sync_to_async(_resolve_and_send)(
        GENERATE, ctx, model_name, build_payload, request_id
    )


async def enqueue_embeddings(
    ctx: RequestContext,
    model_name: str,
    build_payload: PayloadBuilder,
    request_id: str | None = None,
) -> tuple[ModelRecord, str]:
    """Resolve ``model_name`` (raises ModelNotFound) and enqueue an embedding request asked
    by ``ctx``."""
    return await sync_to_async(_resolve_and_send)(EMBED, ctx, model_name, build_payload, request_id)
