"""Read the lanes themselves: how deep each is, and where a request stands in one.

Celery keeps a queue as Redis lists (under the namespace prefix), one per priority level,
each pushed on the left and taken from the right, level 0 first (``workers.broker.fairness`` says
who gets which level); messages carry their task arguments as base64 JSON, the request id
first.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import redis
from django.conf import settings

from workers.broker.fairness import LEVELS

# Kombu's separator between a queue's name and its priority level.
PRIORITY_SEPARATOR = "\x06\x16"


def list_key(queue: str, level: int = 0) -> str:
    """The Redis list that holds Celery queue ``queue``'s messages of priority ``level``."""
    name = f"{settings.HERD_NAMESPACE}:{queue}"
    return f"{name}{PRIORITY_SEPARATOR}{level}" if level else name


def lane_lists(queue: str) -> list[str]:
    """The Redis lists of ``queue``, in the order a worker takes from them."""
    return [list_key(queue, level) for level in range(LEVELS)]


def queue_of_list(key: str) -> tuple[str, int]:
    """``list_key``'s inverse: the queue (without the namespace prefix) and the level."""
    name = key.split(":", 1)[1] if ":" in key else key
    queue, _, level = name.partition(PRIORITY_SEPARATOR)
    return queue, int(level) if level.isdigit() else 0


def lane_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in ``queue`` (not counting those a worker has taken)."""
    pipe = client.pipeline(transaction=False)
    for key in lane_lists(queue):
        pipe.llen(key)
    return sum(int(n) for n in pipe.execute())


def lane_messages(client: redis.Redis, queue: str) -> list[bytes]:
    """The messages waiting in ``queue``, the next one a worker takes first."""
    pipe = client.pipeline(transaction=False)
    for key in lane_lists(queue):
        pipe.lrange(key, 0, -1)
    return [raw for level in pipe.execute() for raw in reversed(level)]


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
    for raw in lane_messages(client, queue):
        args = message_args(raw)
        if len(args) > 1 and isinstance(args[1], dict):
            counts[str(args[1].get("name", "?"))] += 1
    return counts


def queue_position(client: redis.Redis, queue: str, request_id: str) -> tuple[int, str] | None:
    """Where ``request_id`` waits in ``queue`` (1: the next message a worker takes) and for
    which model; None when it is not waiting there."""
    for index, raw in enumerate(lane_messages(client, queue)):
        args = message_args(raw)
        if args and str(args[0]) == request_id:
            model = args[1].get("name", "?") if len(args) > 1 and isinstance(args[1], dict) else "?"
            return index + 1, str(model)
    return None
