"""``herd pull REF``: pull a model through the running server, with a progress bar per file."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from models_app.client import HerdClient


class Command(BaseCommand):
    help = "Pull a model from Hugging Face: hf.co/{owner}/{repo}[:quant] or .../{file}.gguf"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", help="e.g. hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M")

    def handle(self, *args: Any, **options: Any) -> None:
        bars: dict[str, tqdm[Any]] = {}
        try:
            for event in HerdClient().stream("/api/pull", {"model": options["reference"]}):
                digest = event.get("digest")
                if digest:
                    bar = bars.get(digest)
                    if bar is None:
                        bar = bars[digest] = tqdm(
                            total=event.get("total") or 0,
                            desc=event["status"],
                            unit="B",
                            unit_scale=True,
                            unit_divisor=1000,
                            file=sys.stderr,
                            dynamic_ncols=True,
                        )
                    bar.update(int(event.get("completed") or 0) - bar.n)
                else:
                    self._close(bars)
                    self.stdout.write(event["status"])
        finally:
            self._close(bars)

    def _close(self, bars: dict[str, tqdm[Any]]) -> None:
        for bar in bars.values():
            bar.close()
        bars.clear()
