"""``herd import NAME PATH [--template FILE] [--projector FILE]``: register a local GGUF as a
model (with its vision projector, when it has one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_app.gguf_metadata import GGUFError
from models_app.names import InvalidModelName
from models_app.registration import do_import_model


class Command(BaseCommand):
    help = "Register a local GGUF file as a model, reading its metadata from the file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="name[:tag], e.g. mymodel:7b")
        parser.add_argument("path", type=Path, help="the .gguf file")
        parser.add_argument(
            "--template",
            type=Path,
            default=None,
            help="a file holding a Jinja chat template to use instead of the file's own",
        )
        parser.add_argument(
            "--projector",
            type=Path,
            default=None,
            help="the model's vision projector (an mmproj .gguf), so that it reads images",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        template = options["template"].read_text() if options["template"] else None
        projector = options["projector"]
        if projector is not None and not projector.is_file():
            raise CommandError(f"no such projector file: {projector}")
        try:
            record = do_import_model(
                options["name"], options["path"], chat_template=template, projector=projector
            )
        except (InvalidModelName, GGUFError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"imported {record.name}: {record.family} {record.parameter_size} "
            f"{record.quantization}, context {record.context_length}"
        )
