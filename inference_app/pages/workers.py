"""The workers page: every live worker from the registry, with its device, memory (used of
its budget, when its heartbeat says), resident models, the depth of their lanes and the age of
its heartbeat. The page reloads its body every few seconds."""

from __future__ import annotations

import time
from typing import Any

import redis
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from inference_app.batches.models import LineStatus
from inference_app.status.queries import lines_by_model
from project.broker import sync_client
from project.pages.access import is_htmx
from workers.broker import keys
from workers.broker.queues import lane_depth, waiting_by_model
from workers.broker.registry import live_workers


def describe_worker(client: redis.Redis, worker: dict[str, Any], now: float) -> dict[str, Any]:
    """One worker as the page shows it."""
    budget = int(worker.get("budget") or 0)
    used = worker.get("memory_used")
    if used is None:  # heartbeats from before memory was reported
        used = sum(int(m.get("size") or 0) for m in worker.get("models", []))
    # Interactive requests wait in this worker's own lane; batch lines are counted by model.
    waiting = waiting_by_model(client, keys.interactive_lane(str(worker.get("name", ""))))
    batch_queued = lines_by_model(LineStatus.QUEUED)
    models = []
    for model in worker.get("models", []):
        expires = model.get("expires_at")
        models.append(
            {
                "name": model.get("name", "?"),
                "size": int(model.get("size") or 0),
                "interactive": waiting.get(str(model.get("name")), 0),
                "batch": batch_queued.get(str(model.get("name")), 0),
                "expires_in": None if not expires or expires < 0 else max(0.0, expires - now),
            }
        )
    return {
        "name": worker.get("name", "?"),
        "host": worker.get("host", ""),
        "pid": worker.get("pid"),
        "device": worker.get("device", "?"),
        "budget": budget,
        "used": int(used),
        "percent": min(100, int(used) * 100 // budget) if budget else None,
        "models": models,
        # The worker's own lanes, whatever model their messages are for.
        "lanes": {
            "interactive": lane_depth(client, keys.interactive_lane(str(worker.get("name", "")))),
            "batch": lane_depth(client, keys.batch_lane(str(worker.get("name", "")))),
        },
        "heartbeat_age": max(0.0, now - float(worker.get("time", now))),
    }


@login_required
@require_GET
def workers_page(request: HttpRequest) -> HttpResponse:
    client = sync_client()
    context: dict[str, Any] = {"nav": "workers", "error": None, "workers": []}
    try:
        now = time.time()
        context["workers"] = [describe_worker(client, w, now) for w in live_workers(client)]
    except redis.RedisError as exc:
        context["error"] = f"The worker registry cannot be read: {exc}"
    template = "workers/_workers.html" if is_htmx(request) else "workers/workers.html"
    return render(request, template, context)
