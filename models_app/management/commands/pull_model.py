"""``herd pull REF``: pull a model through the running server, with a progress bar per file."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from models_app.cli_progress import show_progress
from models_app.client import HerdClient


class Command(BaseCommand):
    help = "Pull a model from Hugging Face: hf.co/{owner}/{repo}[:quant] or .../{file}.gguf"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", help="e.g. hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M")

    def handle(self, *args: Any, **options: Any) -> None:
        events = HerdClient().stream("/api/pull", {"model": options["reference"]})
        show_progress(events, self.stdout.write)
