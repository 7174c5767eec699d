"""A live server that requires API keys (``HERD_AUTH=required``), and what tests do with it:
make keys with the real ``herd keys`` command, call the APIs with them, start a second web
process on the same broker and database, hold the clock its limit windows follow."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import redis
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.http_methods import RequestMethods
from tests.inprocess import InProcessServer
from tests.live import REPO, LiveServer, free_port, make_server

STAFF_USER = "admin"
STAFF_PASSWORD = "admin-password-for-tests"
# No cache: a revocation takes effect at the next request, so no test waits one out (the
# cache's expiry is tested with its clock moved on, in tests/test_key_cache.py); production
# keeps the 5 s default.
KEY_CACHE_SECONDS = "0"
# Browser origin the keyed server allows (HERD_ORIGINS).
KEYED_ORIGIN = "https://app.example"
# Sequences a model of the keyed server decodes at once: fewer than the requests a fairness
# test queues, so that some of them wait for a turn.
KEYED_PARALLEL = 4
# Where a test holds the limiter's clock (HERD_TEST_CLOCK): one second into a minute, at noon
# UTC, so that all of a test's requests fall in one minute window and one day, however long
# the test takes on a loaded machine.
LIMIT_CLOCK_AT = datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC).timestamp()


class KeyedCalls(RequestMethods):
    """Calls with a key, to a keyed server live or in process."""

    staff_secret: str = ""

    def create_key(self, name: str, *flags: str) -> str:
        """``herd keys create NAME FLAGS...``; the secret it prints last."""
        raise NotImplementedError

    def call(
        self,
        method: str,
        path: str,
        secret: str | None,
        *,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        return self.request(
            method,
            f"{base_url or self.base_url}{path}",
            headers=headers,
            timeout=60,
            **kwargs,
        )

    def complete(self, secret: str, model: str = "tiny", **body: Any) -> httpx.Response:
        payload = {"model": model, "prompt": "hello", "max_tokens": 4, **body}
        return self.call("POST", "/v1/completions", secret, json=payload)


class KeyedServer(KeyedCalls, LiveServer):
    """Ready when web answers (401, as no key is sent) and a worker has registered."""

    staff_secret: str = ""

    def web_log(self, base_url: str) -> str:
        """The end of the log of the web process at ``base_url`` (for failure messages)."""
        port = base_url.rsplit(":", 1)[1]
        path = self.home / f"web-{port}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"herd serve exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                answered = httpx.get(f"{self.base_url}/v1/models", timeout=2).status_code
                if answered == 401 and self.workers():
                    return
            except (httpx.HTTPError, OSError, redis.RedisError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"herd serve not ready:\n{self.log_path.read_text()[-4000:]}")

    def hold_limit_clock(self, at: float = LIMIT_CLOCK_AT) -> None:
        """Hold the clock the limit windows follow at ``at`` (seconds since the epoch), in
        every web process of this server (the key ``accounts.rkeys.limit_clock`` names)."""
        self.redis().set(f"{self.namespace}:test:limit-clock", repr(at))

    def create_key(self, name: str, *flags: str) -> str:
        """``herd keys create NAME FLAGS...``; returns the secret from its last line."""
        return self.herd("keys", "create", name, *flags).stdout.strip().splitlines()[-1]

    @contextmanager
    def second_web(self) -> Iterator[str]:
        """Another uvicorn on the same HERD_HOME, broker and database; yields its base URL."""
        port = free_port()
        log = (self.home / f"web-{port}.log").open("ab")
        env = {**self.env, "REDIS_URL": self.redis_url}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "project.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--lifespan",
                "off",
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base_url}/v1/models", timeout=2).status_code == 401:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"second web process did not start on {port}")
                time.sleep(0.2)
            yield base_url
        finally:
            process.terminate()
            process.wait(10)


def start_keyed_server(
    root: Path, models: dict[str, Path], extra_env: dict[str, str] | None = None
) -> KeyedServer:
    plain = make_server(
        root,
        models,
        {
            "HERD_AUTH": "required",
            "HERD_KEY_CACHE_SECONDS": KEY_CACHE_SECONDS,
            "HERD_TEST_CLOCK": "on",
            **(extra_env or {}),
        },
    )
    server = KeyedServer(home=plain.home, env=plain.env, port=plain.port)
    server.env["DJANGO_SUPERUSER_PASSWORD"] = STAFF_PASSWORD
    server.herd(
        "createsuperuser", "--noinput", "--username", STAFF_USER, "--email", "admin@example.com"
    )
    server.staff_secret = server.create_key("staff", "--user", STAFF_USER)
    server.start()
    return server


class KeyedWeb(KeyedCalls, InProcessServer):
    """The keyed server's web process in this one (``keyed_web``): for what it decides about
    keys before any worker is asked. Keys are made with the same ``keys`` command."""

    def create_key(self, name: str, *flags: str) -> str:
        """``herd keys create NAME FLAGS...`` (the command, in process); the secret."""
        out = StringIO()
        call_command("keys", "create", name, *flags, stdout=out)
        return out.getvalue().strip().splitlines()[-1]


def make_keyed_web(web: InProcessServer) -> KeyedWeb:
    """``web``, keyed: the staff user ``admin`` with its key, as ``start_keyed_server`` makes.
    The caller sets the settings (``keyed_web``)."""
    keyed = KeyedWeb(web.base_url, web.transport, web.home)
    get_user_model().objects.create_superuser(STAFF_USER, "admin@example.com", STAFF_PASSWORD)
    keyed.staff_secret = keyed.create_key("staff", "--user", STAFF_USER)
    return keyed
