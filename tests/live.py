"""A real Herd server for tests: ``herd serve`` in a subprocess, with its own HERD_HOME,
database, namespace and port, serving models written by ``tests.tiny_gguf``.

The broker is the embedded Valkey, or the Redis at ``REDIS_URL`` when the environment sets it;
the database is SQLite in HERD_HOME, or a fresh database on the PostgreSQL server named by
``DATABASE_URL`` when the environment sets it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis

from tests.http_methods import RequestMethods

REPO = Path(__file__).resolve().parent.parent

# The fixtures that start a live server: tests/conftest.py marks every test that uses one
# (directly or through another fixture) ``live``. ``live_fixture`` adds to it.
LIVE_FIXTURES = {"server", "keyed_server", "pull_server"}

F = TypeVar("F", bound=Callable[..., Any])


def live_fixture(**options: Any) -> Callable[[F], F]:
    """``pytest.fixture(**options)`` for a fixture that starts a live server."""

    def register(function: F) -> F:
        LIVE_FIXTURES.add(function.__name__)
        fixture: F = pytest.fixture(**options)(function)
        return fixture

    return register


class LiveGuard:
    """Whether the test being set up is marked live (tests/conftest.py says, test by test):
    ``make_server`` refuses to start a server for any other, so a test cannot start one
    without the mark and slow down ``make test-fast``."""

    allowed = True  # outside pytest's run loop (a script using this module), no guard

    @classmethod
    def check(cls) -> None:
        if not cls.allowed:
            raise RuntimeError(
                "this test starts a live server: mark it with pytest.mark.live, or make its "
                "server fixture with tests.live.live_fixture"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def herd(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "project.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def fresh_postgres_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url`` and return its URL."""
    import psycopg

    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class LiveServer(RequestMethods):
    home: Path
    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.home / "serve.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def namespace(self) -> str:
        return self.env["HERD_NAMESPACE"]

    @property
    def redis_url(self) -> str:
        if self.env.get("REDIS_URL"):
            return self.env["REDIS_URL"]
        return (self.home / "run" / "valkey.url").read_text().strip()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, url, **kwargs)

    def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> AbstractContextManager[httpx.Response]:
        return httpx.stream(method, url, **kwargs)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def herd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return herd(*args, env=self.env, check=check)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "project.cli", "serve"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"herd serve exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                if (
                    httpx.get(f"{self.base_url}/v1/models", timeout=2).status_code == 200
                    and self.workers()
                ):
                    return
            except (httpx.HTTPError, OSError, redis.RedisError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"herd serve not ready:\n{self.log_path.read_text()[-4000:]}")

    def workers(self) -> list[dict[str, Any]]:
        client = self.redis()
        names: Any = client.smembers(f"{self.namespace}:workers")
        infos = [client.get(f"{self.namespace}:worker:{n.decode()}") for n in names]
        return [json.loads(i) for i in infos if i]

    def wait_for_worker(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The single worker's registry entry, once ``predicate`` holds for it."""
        deadline = time.monotonic() + timeout
        while True:
            workers = self.workers()
            if len(workers) == 1 and predicate(workers[0]):
                return workers[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker matched in {timeout}s: {workers}")
            time.sleep(0.1)

    def worker_pid(self) -> int:
        (worker,) = self.workers()
        return int(worker["pid"])

    def children(self) -> list[int]:
        assert self.process is not None
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def make_server(root: Path, models: dict[str, Path], extra_env: dict[str, str]) -> LiveServer:
    LiveGuard.check()
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}
    env.update(
        {
            "HERD_HOME": str(home),
            "HERD_HOST": f"127.0.0.1:{port}",
            "HERD_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}",
            "HERD_HEARTBEAT_TTL": "1.5",
            # Several live servers share the machine's cores in one run: llama.cpp threads
            # that wait on each other at every step would slow them all down.
            "HERD_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env)
    if os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql")):
        env["DATABASE_URL"] = fresh_postgres_database(
            os.environ["DATABASE_URL"], f"herd_live_{uuid.uuid4().hex[:8]}"
        )
    server = LiveServer(home=home, env=env, port=port)
    server.herd("migrate", "-v0")
    for name, path in models.items():
        server.herd("import", name, str(path))
    return server
