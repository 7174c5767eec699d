"""``herd cp SOURCE DESTINATION``: give a model a second (often shorter) name."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from models_app.client import HerdClient


class Command(BaseCommand):
    help = "Copy a model to a new name (the file is shared, not copied)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source")
        parser.add_argument("destination")

    def handle(self, *args: Any, **options: Any) -> None:
        body = {"source": options["source"], "destination": options["destination"]}
        HerdClient().call("POST", "/api/copy", body)
        self.stdout.write(f"copied '{options['source']}' to '{options['destination']}'")
