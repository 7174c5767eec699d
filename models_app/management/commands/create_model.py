"""``herd create NAME -f Modelfile``: make a model from a Modelfile through the running server,
as ``ollama create`` does.

``FROM`` names a model the server has, or a local GGUF file (a path, relative to the
Modelfile): the file is sent as a blob first unless the server holds it already. A second
``FROM`` names the model's vision projector file, sent the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_app.cli_progress import show_progress
from models_app.client import HerdClient
from models_app.modelfile import Modelfile, ModelfileError, parse_modelfile


def local_file(modelfile: Modelfile, folder: Path) -> Path | None:
    """The GGUF that ``FROM`` names, or None when it names a model. Raises ModelfileError for
    a path with no file behind it."""
    reference = modelfile.from_
    candidate = (folder / Path(reference).expanduser()).resolve()
    looks_like_path = reference.startswith(("/", "./", "../", "~")) or reference.lower().endswith(
        ".gguf"
    )
    if not looks_like_path and not candidate.is_file():
        return None
    if not candidate.is_file():
        raise ModelfileError(modelfile.from_line, "FROM", f"no such file: {candidate}")
    return candidate


def projector_file(modelfile: Modelfile, folder: Path) -> Path | None:
    """The vision projector file a second ``FROM`` names, or None. Raises ModelfileError for a
    path with no file behind it."""
    if not modelfile.projector:
        return None
    candidate = (folder / Path(modelfile.projector).expanduser()).resolve()
    if not candidate.is_file():
        raise ModelfileError(modelfile.projector_line, "FROM", f"no such file: {candidate}")
    return candidate


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


class Command(BaseCommand):
    help = "Create a model from a Modelfile (FROM, TEMPLATE, SYSTEM, PARAMETER, MESSAGE, LICENSE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the new model's name, e.g. tiny-pirate or mine:v2")
        parser.add_argument("-f", "--file", default="Modelfile", help="the Modelfile to read")
        parser.add_argument(
            "-q", "--quantize", help="quantize the model to this type (q4_K_M, q8_0, ...)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read the Modelfile {path}: {exc}") from None
        try:
            modelfile = parse_modelfile(text)
            source = local_file(modelfile, path.parent)
            projector = projector_file(modelfile, path.parent)
        except ModelfileError as exc:
            raise CommandError(f"{path}: {exc}") from None

        client = HerdClient()
        body: dict[str, Any] = {"model": options["name"], **modelfile.create_fields()}
        if options["quantize"]:
            body["quantize"] = options["quantize"]
        files = {}
        if source is None:
            body["from"] = modelfile.from_
        for local in (source, projector):
            if local is None:
                continue
            self.stdout.write("gathering model components")
            digest = file_digest(local)
            if not client.has_blob(digest):
                self.stdout.write(f"copying file {digest}")
                client.upload_blob(local, digest)
            files[local.name] = digest
        if files:
            body["files"] = files
        show_progress(client.stream("/api/create", body), self.stdout.write)
