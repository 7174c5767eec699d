"""``herd show NAME``: a model's metadata, capabilities, parameters and system prompt
(``--template``: its chat template; ``--modelfile``: a Modelfile that recreates it)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from models_app.client import HerdClient


class Command(BaseCommand):
    help = "Show what the server knows about a model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--template", action="store_true", help="print the chat template")
        parser.add_argument(
            "--modelfile", action="store_true", help="print a Modelfile that recreates the model"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        shown = HerdClient().call("POST", "/api/show", {"model": options["name"]})
        if options["modelfile"]:
            self.stdout.write(shown.get("modelfile", ""), ending="")
            return
        if options["template"]:
            self.stdout.write(shown.get("template", ""))
            return
        info, details = shown["model_info"], shown["details"]
        arch = info.get("general.architecture", "")
        self._section(
            "Model",
            [
                ("architecture", arch),
                ("parameters", details.get("parameter_size", "")),
                ("context length", info.get(f"{arch}.context_length", "")),
                ("embedding length", info.get(f"{arch}.embedding_length", "")),
                ("quantization", details.get("quantization_level", "")),
                *([("parent", details["parent_model"])] if details.get("parent_model") else []),
            ],
        )
        self._section("Capabilities", [(c, "") for c in shown.get("capabilities", [])])
        parameters = [tuple(line.split(maxsplit=1)) for line in shown["parameters"].splitlines()]
        if parameters:
            self._section("Parameters", parameters)
        if shown.get("system"):
            self._section("System", [(shown["system"], "")])

    def _section(self, title: str, rows: list[tuple[Any, ...]]) -> None:
        self.stdout.write(f"  {title}")
        for row in rows:
            key, value = (str(row[0]), str(row[1]) if len(row) > 1 else "")
            self.stdout.write(f"    {key:<20}{value}".rstrip())
        self.stdout.write("")
