"""``herd web``: the web process alone (Django's ASGI app under uvicorn), for deployments in
which the broker, the workers and beat each run on their own (``docker-compose.yml``).

It migrates first, as ``herd serve`` does, then becomes uvicorn (``exec``), so that the
container's stop signal reaches the server itself.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference_app.management.commands.serve import listen_address, uvicorn_argv


class Command(BaseCommand):
    help = "Run the web process alone on HERD_HOST; the broker must be given (REDIS_URL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--processes", type=int, default=1, help="uvicorn worker processes (default 1)"
        )
        parser.add_argument(
            "--no-migrate", action="store_true", help="skip applying database migrations"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = listen_address()
        if not settings.REDIS_URL_CONFIGURED:
            # Without it web would look for the broker `herd serve` embeds, which is not here.
            raise CommandError("herd web needs REDIS_URL: the broker the workers use")
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1")
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        argv = uvicorn_argv(host, port, options["processes"])
        self.stdout.write(f"Herd web listening on http://{settings.HERD_HOST}")
        self.stdout.flush()
        os.execv(argv[0], argv)
