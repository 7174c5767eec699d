"""``herd ps``: the models the workers hold now, where, how large and until when, as
``ollama ps`` shows them (from ``/api/ps``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.timesince import timeuntil

from models_app.client import HerdClient, human_size

# /api/ps's date for a model kept forever.
FOREVER_YEAR = 2300


def processor(size: int, size_vram: int) -> str:
    if size_vram <= 0:
        return "100% CPU"
    if size_vram >= size:
        return "100% GPU"
    on_gpu = round(100 * size_vram / size)
    return f"{100 - on_gpu}%/{on_gpu}% CPU/GPU"


def until(expires_at: str) -> str:
    when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    if when.year >= FOREVER_YEAR:
        return "Forever"
    now = timezone.now()
    if when <= now:
        return "Stopping..."
    return f"{timeuntil(when, now).split(',')[0]} from now"


class Command(BaseCommand):
    help = "List the models the workers hold now (where, size, until when)."

    def handle(self, *args: Any, **options: Any) -> None:
        models = HerdClient().call("GET", "/api/ps")["models"]
        rows = [("NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "WORKER", "UNTIL")]
        for model in models:
            rows.append(
                (
                    model["name"],
                    model["digest"][:12],
                    human_size(model["size"]),
                    processor(int(model["size"]), int(model.get("size_vram") or 0)),
                    str(model.get("context_length", "")),
                    model.get("worker", ""),
                    until(model["expires_at"]),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            line = "    ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip())
