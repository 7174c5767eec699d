"""``herd rm NAME...``: delete models (their files go when no other model uses them)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from models_app.client import HerdClient


class Command(BaseCommand):
    help = "Delete models from the server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="+")

    def handle(self, *args: Any, **options: Any) -> None:
        client = HerdClient()
        for name in options["names"]:
            client.call("DELETE", "/api/delete", {"model": name})
            self.stdout.write(f"deleted '{name}'")
