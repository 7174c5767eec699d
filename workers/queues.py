"""Read the lanes themselves: how deep each is, and where a request stands in one.

Celery keeps a queue as a Redis list (under the namespace prefix), pushed on the left and
taken from the right; messages carry their task arguments as base64 JSON, the request id first.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import redis
from django.conf import settings


def list_key(queue: str) -> str:
    """The Redis list that holds Celery queue ``queue``."""
    return f"{settings.HERD_NAMESPACE}:{queue}"


def lane_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in ``queue`` (not counting those a worker has taken)."""
    depth: Any = client.llen(list_key(queue))
    return int(depth)


def message_args(raw: bytes) -> list[Any]:
    """The task arguments of a Celery message as it lies in a queue list."""
    try:
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
    except (ValueError, KeyError, IndexError, TypeError):
        return []
    return list(args) if isinstance(args, list) else []


def waiting_by_model(client: redis.Redis, queue: str) -> Counter[str]:
    """How many requests for each model wait in an interactive ``queue`` (its messages carry
    the model's spec as their second argument)."""
    counts: Counter[str] = Counter()
    messages: Any = client.lrange(list_key(queue), 0, -1)
    for raw in messages:
        args = message_args(raw)
        if len(args) > 1 and isinstance(args[1], dict):
            counts[str(args[1].get("name", "?"))] += 1
    return counts


def queue_position(client: redis.Redis, queue: str, request_id: str) -> tuple[int, str] | None:
    """Where ``request_id`` waits in ``queue`` (1: the next message a worker takes) and for
    which model; None when it is not waiting there."""
    messages: Any = client.lrange(list_key(queue), 0, -1)
    for index, raw in enumerate(messages):
        args = message_args(raw)
        if args and str(args[0]) == request_id:
            model = args[1].get("name", "?") if len(args) > 1 and isinstance(args[1], dict) else "?"
            return len(messages) - index, str(model)
    return None
