"""``herd stop NAME``: unload a model now, as ``ollama stop`` does: a request with
``keep_alive: 0`` and no prompt, which the worker holding it answers by unloading it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_app.client import HerdClient


class Command(BaseCommand):
    help = "Unload a model from the worker that holds it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        client = HerdClient()
        name = options["name"]
        held = {m["name"] for m in client.call("GET", "/api/ps")["models"]}
        wanted = name if ":" in name else f"{name}:latest"
        if wanted not in held:
            raise CommandError(f"couldn't find model {name!r} to stop: no worker holds it")
        answer = client.call(
            "POST", "/api/generate", {"model": name, "keep_alive": 0, "stream": False}
        )
        if not answer or answer.get("done_reason") != "unload":
            raise CommandError(f"the server did not unload {name!r}: {answer}")
