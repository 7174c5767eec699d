"""Redis clients for accounts: one async client per event loop (uvicorn runs one per process),
one sync client per process."""

from __future__ import annotations

import asyncio
from functools import lru_cache

import redis
import redis.asyncio as aredis
from django.conf import settings

_async_clients: dict[int, aredis.Redis] = {}


def async_client() -> aredis.Redis:
    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        client = _async_clients[loop_id] = aredis.Redis.from_url(settings.REDIS_URL)
    return client


@lru_cache(maxsize=1)
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)
