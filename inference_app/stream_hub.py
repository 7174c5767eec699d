"""One XREAD for every open request of a web process.

An XREAD per streamed request would cost, with eight answers decoding together, sixteen
round trips a decode step (a reply and a new call apiece) in web and
in Redis, on the cores the decode runs on. Here one task per event loop follows every stream
that a request is reading, in one blocking XREAD over all of them, and hands each stream's new
entries to its follower's queue: one reply and one call a step, however many requests.

A stream that joins while that XREAD is blocked would wait for its timeout; so a join writes
to this hub's own wake-up stream, which the XREAD also follows, and the call returns at once.
A follower whose stream stays quiet gets ``QUIET`` every ``POLL_MS``, when its relay checks
that the request's worker is still alive. If Redis fails, every follower gets the error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.asyncio as aredis

from workers.broker import keys

POLL_MS = 500
QUIET = object()  # nothing new on the stream for POLL_MS
_ENTRIES_PER_READ = 256
_WAKE_TTL_SECONDS = 60


class Follower:
    """One request's end of the hub: ``get()`` the stream's next entries (in order),
    ``QUIET``, or the exception that stopped the hub."""

    def __init__(self, stream: str) -> None:
        self.stream = stream.encode()
        self.last_id: bytes = b"0-0"
        self.heard_at = time.monotonic()  # its last entries, or its last QUIET
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    async def get(self) -> Any:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def put(self, item: Any) -> None:
        self._queue.put_nowait(item)


class StreamHub:
    """The reader of one event loop's request streams (see the module docstring)."""

    def __init__(self, client: aredis.Redis) -> None:
        self._client = client
        self._followers: dict[bytes, Follower] = {}
        self.loop = asyncio.get_running_loop()
        self._wake_stream = keys.relay_wake_stream(uuid.uuid4().hex)
        self._wake_key = self._wake_stream.encode()
        self._wake_id: bytes = b"0-0"
        self._reading = False  # inside the blocking XREAD
        self._task: asyncio.Task[None] | None = None

    async def follow(self, stream: str) -> Follower:
        follower = Follower(stream)
        self._followers[follower.stream] = follower
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._read())
        elif self._reading:
            pipe = self._client.pipeline(transaction=False)
            pipe.xadd(self._wake_stream, {"w": 1}, maxlen=8, approximate=True)
            pipe.expire(self._wake_stream, _WAKE_TTL_SECONDS)
            await pipe.execute()
        return follower

    def unfollow(self, follower: Follower) -> None:
        if self._followers.get(follower.stream) is follower:
            del self._followers[follower.stream]

    async def _read(self) -> None:
        while self._followers:
            wanted = {self._wake_key: self._wake_id}
            wanted.update({f.stream: f.last_id for f in self._followers.values()})
            self._reading = True
            try:
                reply: Any = await self._client.xread(
                    wanted,  # type: ignore[arg-type]
                    count=_ENTRIES_PER_READ,
                    block=POLL_MS,
                )
            except Exception as exc:
                for follower in self._followers.values():
                    follower.put(exc)
                self._followers.clear()
                return
            finally:
                self._reading = False
            now = time.monotonic()
            for stream, entries in reply or []:
                if stream == self._wake_key:
                    self._wake_id = entries[-1][0]
                    continue
                reader = self._followers.get(stream)
                if reader is None or not entries:
                    continue  # it left while the call was out
                reader.last_id = entries[-1][0]
                reader.heard_at = now
                reader.put(entries)
            for follower in self._followers.values():
                if now - follower.heard_at >= POLL_MS / 1000:
                    follower.heard_at = now
                    follower.put(QUIET)


# Like the redis.asyncio client it reads with, a hub belongs to one event loop.
_hubs: dict[int, StreamHub] = {}


def stream_hub(client: aredis.Redis) -> StreamHub:
    """The running loop's hub, reading with ``client`` (a client of that loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub.loop is not loop:
        hub = _hubs[id(loop)] = StreamHub(client)
    return hub
