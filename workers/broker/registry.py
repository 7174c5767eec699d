"""The worker registry: each worker keeps a short-lived key alive while it runs.

Web reads it to tell a slow worker from a dead one; a key that is gone means the worker is gone.
The value also lists the models the worker holds (``models``), which ``/api/ps`` shows; the
worker's heartbeat thread (``workers.worker.heartbeat``) writes it.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from django.conf import settings

from workers.broker import keys


def beat_once(client: redis.Redis, name: str, info: dict[str, Any]) -> None:
    ttl_ms = int(float(settings.HERD_HEARTBEAT_TTL) * 1000)
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.worker_heartbeat(name), json.dumps(info), px=ttl_ms)
    pipe.sadd(keys.worker_registry(), name)
    pipe.execute()


def instance_alive(raw_heartbeat: bytes | None, instance: str) -> bool:
    """Whether a heartbeat value (from ``keys.worker_heartbeat``) is that worker instance's."""
    return raw_heartbeat is not None and json.loads(raw_heartbeat).get("instance") == instance


def live_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """The registered workers whose heartbeat is current; forgets the others."""
    members: Any = client.smembers(keys.worker_registry())
    names = sorted(n.decode() for n in members)
    alive = []
    for name in names:
        raw = client.get(keys.worker_heartbeat(name))
        if raw is None:
            client.srem(keys.worker_registry(), name)
        else:
            alive.append(json.loads(raw))
    return alive
