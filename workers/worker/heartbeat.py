"""The worker's heartbeat: a thread that keeps its entry in the registry
(``workers.broker.registry``) alive, with the models it holds (``ResidentModel.describe``).

The same thread unloads models whose keep-alive has run out, so what the registry shows is
what the worker really holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from django.conf import settings

from workers.broker import keys
from workers.broker.queues import lane_depth
from workers.broker.registry import beat_once

log = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread that refreshes the worker's key three times per TTL."""

    def __init__(self, client: redis.Redis, name: str, instance: str, device: str) -> None:
        self._client = client
        self._name = name
        self._instance = instance
        self._device = device
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        # If the broker went first, the key expires by itself.
        with contextlib.suppress(redis.RedisError):
            self._client.delete(keys.worker_heartbeat(self._name))

    def info(self) -> dict[str, Any]:
        from workers.worker.runtime import runtime

        held = runtime().residency.resident()
        return {
            "name": self._name,
            "instance": self._instance,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self._device,
            "resident": [m.spec.name for m in held],
            "models": [m.describe(self._device) for m in held],
            "loads": dict(runtime().residency.load_counts),
            "budget": runtime().residency.budget,
            "memory_used": runtime().residency.memory_used(),
            "lanes": {
                "interactive": lane_depth(self._client, keys.interactive_lane(self._name)),
                "batch": lane_depth(self._client, keys.batch_lane(self._name)),
            },
            "time": time.time(),
        }

    def _run(self) -> None:
        period = float(settings.HERD_HEARTBEAT_TTL) / 3
        from workers.worker.runtime import runtime

        while not self._stop.is_set():
            try:
                runtime().residency.expire_idle()
            except Exception:
                log.exception("unloading expired models failed")
            try:
                beat_once(self._client, self._name, self.info())
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(period)
