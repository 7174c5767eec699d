"""What is queued and running, per model and lane, and where one request stands.

Read by ``GET /api/status`` and ``GET /v1/status``. Interactive requests wait in the lanes of
the worker chosen for them (Redis lists, read here); batch lines are counted from their rows.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis
from django.db.models import Count

from inference_app.batches.models import BatchLine, LineStatus
from models_app.models import ModelRecord, ModelStatus
from workers.broker import keys
from workers.broker.queues import lane_depth, queue_position, waiting_by_model
from workers.broker.registry import live_workers
from workers.broker.wire import FINAL_EVENTS, Start, decode


def lines_by_model(status: str) -> dict[str, int]:
    rows = BatchLine.objects.filter(status=status).values("model_name").annotate(n=Count("pk"))
    return {row["model_name"]: row["n"] for row in rows}


def queue_status(client: redis.Redis) -> dict[str, Any]:
    workers = live_workers(client)
    interactive: Counter[str] = Counter()
    for worker in workers:
        interactive.update(waiting_by_model(client, keys.interactive_lane(worker["name"])))
    batch_queued = lines_by_model(LineStatus.QUEUED)
    batch_running = lines_by_model(LineStatus.RUNNING)
    models = [
        {
            "model": name,
            "resident_on": [w["name"] for w in workers if name in w.get("resident", [])],
            "lanes": {
                "interactive": {"queued": interactive.get(name, 0)},
                "batch": {
                    "queued": batch_queued.get(name, 0),
                    "running": batch_running.get(name, 0),
                },
            },
        }
        for name in ModelRecord.objects.filter(status=ModelStatus.READY).values_list(
            "name", flat=True
        )
    ]
    return {
        "workers": [
            {
                "name": w["name"],
                "device": w.get("device"),
                "host": w.get("host"),
                "resident": w.get("resident", []),
                "lanes": {
                    "interactive": lane_depth(client, keys.interactive_lane(w["name"])),
                    "batch": lane_depth(client, keys.batch_lane(w["name"])),
                },
                "heartbeat_age": round(time.time() - float(w.get("time", 0)), 3),
            }
            for w in workers
        ],
        "models": models,
    }


def request_status(client: redis.Redis, request_id: str) -> dict[str, Any] | None:
    """``queued`` (with its place: 1 is next), ``running`` (on which worker), ``done``, or
    None when the id is unknown."""
    entries: Any = client.xrange(keys.request_stream(request_id))
    events = [decode(fields[b"e"]) for _, fields in entries]
    if events and isinstance(events[-1], FINAL_EVENTS):
        return {"request_id": request_id, "state": "done"}
    if events:
        first = events[0]
        taken_by = first.worker if isinstance(first, Start) else None
        return {"request_id": request_id, "state": "running", "worker": taken_by}
    for worker in live_workers(client):
        lane = keys.interactive_lane(worker["name"])
        found = queue_position(client, lane, request_id)
        if found is not None:
            position, model = found
            return {
                "request_id": request_id,
                "state": "queued",
                "model": model,
                "worker": worker["name"],
                "lane": "interactive",
                "position": position,
            }
    return None
