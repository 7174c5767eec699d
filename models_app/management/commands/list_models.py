"""``herd list``: the models the server has, as ``ollama list`` shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.timesince import timesince

from models_app.client import HerdClient, human_size


class Command(BaseCommand):
    help = "List the models the server at HERD_HOST can run."

    def handle(self, *args: Any, **options: Any) -> None:
        models = HerdClient().call("GET", "/api/tags")["models"]
        rows = [("NAME", "ID", "SIZE", "MODIFIED")]
        for model in models:
            modified = datetime.fromisoformat(model["modified_at"])
            rows.append(
                (
                    model["name"],
                    model["digest"][:12],
                    human_size(model["size"]),
                    f"{timesince(modified, timezone.now()).split(',')[0]} ago",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            self.stdout.write("    ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
