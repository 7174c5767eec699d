"""Per-process state of a worker: its name, its Redis client and the models it holds.

Made lazily on first use, never at import time, so that importing this module is cheap.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import redis
from django.conf import settings

from workers.worker.residency import Residency


class WorkerRuntime:
    def __init__(self) -> None:
        self.name = os.environ.get("HERD_WORKER_NAME") or f"cpu@{socket.gethostname()}"
        self.device = os.environ.get("HERD_WORKER_DEVICE", "cpu")
        # Bytes of models this worker may hold (``herd worker --memory-budget``); 0: unset.
        self.budget = int(os.environ.get("HERD_WORKER_BUDGET") or 0)
        # A restarted worker keeps its name; the instance tells it from its dead predecessor.
        self.instance = uuid.uuid4().hex

    @cached_property
    def batch_runners(self) -> ThreadPoolExecutor:
        """Threads that run batch lines, apart from Celery's (see workers.worker.batch)."""
        return ThreadPoolExecutor(
            max_workers=int(settings.HERD_BATCH_RUNNERS), thread_name_prefix="batch"
        )

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(settings.REDIS_URL)

    @cached_property
    def residency(self) -> Residency:
        return Residency(budget=self.budget, worker_name=self.name, device=self.device)


_runtime: WorkerRuntime | None = None
_lock = threading.Lock()


def runtime() -> WorkerRuntime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = WorkerRuntime()
        return _runtime
