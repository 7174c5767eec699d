"""Web's stream hub: one XREAD follows every open request's stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from inference_app.stream_hub import POLL_MS, QUIET, StreamHub
from tests.broker import Broker
from tests.live import free_port
from tests.waiting import POLL_SECONDS

T = TypeVar("T")


def run_in_own_loop(scenario: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop in a thread of its own.

    While the browser tests' Playwright is open it keeps an event loop running on the main
    thread, where ``asyncio.run`` refuses to start another.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario).result()


async def entries_until(follower: Any, count: int) -> list[bytes]:
    seen: list[bytes] = []
    while len(seen) < count:
        item = await follower.get()
        if item is not QUIET:
            seen.extend(fields[b"n"] for _, fields in item)
    return seen


async def blocked_in_xread(broker: Broker, client_name: str, timeout: float = 5) -> None:
    """Until the broker itself lists the connection named ``client_name`` as blocked in an
    XREAD (CLIENT LIST: ``cmd=xread``, flag ``b``)."""
    admin = broker.redis()
    deadline = time.monotonic() + timeout
    while not any(
        c["name"] == client_name and c["cmd"] == "xread" and "b" in c["flags"]
        for c in admin.client_list()
    ):
        assert time.monotonic() < deadline, f"{client_name} never blocked in XREAD"
        await asyncio.sleep(POLL_SECONDS)


def test_each_follower_gets_its_own_stream_in_order(broker: Broker) -> None:
    streams = [f"hub-test:{time.time_ns()}:{n}" for n in range(6)]
    writer = broker.redis()

    async def scenario() -> list[list[bytes]]:
        client = aredis.Redis.from_url(broker.redis_url)
        hub = StreamHub(client)
        followers = [await hub.follow(s) for s in streams]
        readers = [asyncio.create_task(entries_until(f, 50)) for f in followers]
        for i in range(50):
            pipe = writer.pipeline(transaction=False)
            for s in streams:
                pipe.xadd(s, {"n": f"{s}/{i}"})
            pipe.execute()
            await asyncio.sleep(0.001)  # pacing the writer: the readers see entries arrive
        seen = await asyncio.wait_for(asyncio.gather(*readers), 10)
        await client.aclose()
        return seen

    for stream, seen in zip(streams, run_in_own_loop(scenario()), strict=True):
        assert seen == [f"{stream}/{i}".encode() for i in range(50)]


def test_a_stream_joining_during_the_wait_is_read_at_once(broker: Broker) -> None:
    first, second = (f"hub-join:{time.time_ns()}:{n}" for n in range(2))
    writer = broker.redis()

    async def scenario() -> float:
        client = aredis.Redis.from_url(broker.redis_url, client_name=first)
        hub = StreamHub(client)
        await hub.follow(first)
        await blocked_in_xread(broker, first)  # the hub waits in its XREAD on this stream alone
        writer.xadd(second, {"n": "hello"})
        started = time.monotonic()
        joined = await hub.follow(second)
        assert await entries_until(joined, 1) == [b"hello"]
        waited = time.monotonic() - started
        await client.aclose()
        return waited

    assert run_in_own_loop(scenario()) < POLL_MS / 1000 / 2


def test_a_quiet_stream_hears_quiet_every_poll(broker: Broker) -> None:
    async def scenario() -> tuple[Any, float]:
        client = aredis.Redis.from_url(broker.redis_url)
        hub = StreamHub(client)
        follower = await hub.follow(f"hub-quiet:{time.time_ns()}")
        started = time.monotonic()
        item = await asyncio.wait_for(follower.get(), 5)
        waited = time.monotonic() - started
        await client.aclose()
        return item, waited

    item, waited = run_in_own_loop(scenario())
    assert item is QUIET
    assert POLL_MS / 1000 * 0.8 < waited < POLL_MS / 1000 * 3


def test_a_broken_redis_reaches_every_follower() -> None:
    async def scenario() -> None:
        # No retries: the error itself reaching every follower is what is tested.
        client = aredis.Redis(
            port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        hub = StreamHub(client)
        followers = [await hub.follow(f"hub-gone:{n}") for n in range(3)]
        for follower in followers:
            with pytest.raises(redis.ConnectionError):
                await asyncio.wait_for(follower.get(), 5)
        await client.aclose()

    run_in_own_loop(scenario())
