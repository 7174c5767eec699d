"""The synchronous Redis client of a web process (one per process, thread-safe pool).

Worker processes use ``workers.runtime.runtime().redis``; async views use
``inference_app.relay``'s per-loop clients.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)
