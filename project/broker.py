"""The web process's clients of the broker: one synchronous client (a thread-safe pool) and
one asyncio client per event loop (uvicorn runs one loop per process), each per
``REDIS_URL``, made on first use.

Worker processes use ``workers.worker.runtime.runtime().redis``.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

import redis
import redis.asyncio as aredis
from django.conf import settings

# A broker that does not answer must not hang a page or a request for long.
_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 5}

_async_clients: dict[tuple[int, str], aredis.Redis] = {}


@lru_cache(maxsize=4)
def _sync_client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, **_TIMEOUTS)


def sync_client() -> redis.Redis:
    return _sync_client_for(settings.REDIS_URL)


def async_client() -> aredis.Redis:
    """The running loop's client. Without a read timeout: the relay blocks on XREAD."""
    key = (id(asyncio.get_running_loop()), settings.REDIS_URL)
    client = _async_clients.get(key)
    if client is None:
        client = _async_clients[key] = aredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2
        )
    return client
