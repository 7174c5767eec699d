"""``herd worker --device cpu|cuda:N``: a Celery worker pinned to one device."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.sizes import parse_size
from workers.worker.cpus import default_threads
from workers.worker.devices import DeviceError, default_budget, parse_device


def llama_thread_choice() -> str:
    """The llama.cpp threads this worker runs, and why, in words for its log."""
    from django.conf import settings

    if int(settings.HERD_NUM_THREADS):
        return f"{settings.HERD_NUM_THREADS} llama.cpp threads (HERD_NUM_THREADS)"
    choice = default_threads()
    return f"{choice.threads} llama.cpp threads ({choice.reason})"


class Command(BaseCommand):
    help = "Run a worker pinned to one device; it serves the lanes of every ready model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--device", default="cpu", help="cpu or cuda:N")
        parser.add_argument("--name", default="", help="worker name (default: DEVICE@HOST)")
        parser.add_argument(
            "--threads", type=int, default=0, help="request threads (default HERD_WORKER_THREADS)"
        )
        parser.add_argument(
            "--memory-budget",
            default=os.environ.get("HERD_MEMORY_BUDGET", ""),
            help="memory the worker may fill with models, e.g. 6GiB (default: HERD_MEMORY_BUDGET, "
            "else the GPU's memory, or the RAM available at start)",
        )
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            device = parse_device(options["device"])
            budget = (
                parse_size(options["memory_budget"])
                if options["memory_budget"]
                else default_budget(device)
            )
        except (DeviceError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        # Must happen before llama.cpp is imported: CUDA reads it once, at load.
        os.environ.update(device.environment())
        name = options["name"] or f"{str(device).replace(':', '')}@{socket.gethostname()}"
        os.environ["HERD_WORKER_NAME"] = name
        os.environ["HERD_WORKER_DEVICE"] = str(device)
        os.environ["HERD_WORKER_BUDGET"] = str(budget)

        from django.conf import settings

        from project.celery import app
        from workers.broker.lanes import lanes_for_worker
        from workers.worker import control, signals, tasks  # noqa: F401  (registered on import)

        threads = options["threads"] or settings.HERD_WORKER_THREADS
        self.stdout.write(f"{name}: {llama_thread_choice()}")
        # A token passes from the engine thread to the thread that publishes it; with Python's
        # default 5 ms switch interval that handover can wait for a busy thread's turn.
        sys.setswitchinterval(0.0005)
        app.worker_main(
            [
                "worker",
                f"--hostname={name}",
                "--pool=threads",
                f"--concurrency={threads}",
                f"--queues={','.join(lanes_for_worker(name))}",
                f"--loglevel={options['loglevel']}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
