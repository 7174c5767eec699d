"""Model record services: ``check_*`` validate, ``do_*`` write."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from models_app.aliases import afind_by_alias, find_by_alias
from models_app.gguf_metadata import read_gguf_metadata
from models_app.models import ModelRecord, ModelStatus
from models_app.names import normalize_model_name
from project.edge.errors import NotFound
from project.edge.families import OPENAI
from workers.models import Placement

log = logging.getLogger(__name__)

_SPLIT_PART = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$")


class ModelNotFound(NotFound, LookupError):
    """No ready model of that name (or none the key may see): worded as each API words it,
    since clients match on the words (Ollama's ``model 'x' not found`` starts a pull)."""

    code = "model_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' not found", param="model")
        self.name = name

    def message_for(self, family: str) -> str:
        if family == OPENAI:
            return f"The model '{self.name}' does not exist"
        return self.message


def find_ready_model(name: str) -> ModelRecord:
    """The READY record called ``name`` (``latest`` implied), or the one with that alias.
    Raises ModelNotFound."""
    try:
        normalized = normalize_model_name(name)
    except ValueError:
        raise ModelNotFound(name) from None
    # Whether any worker is pinned comes with the record (one query where none is: the
    # usual case, and the request path).
    record: ModelRecord | None = (
        ModelRecord.objects.filter(name=normalized, status=ModelStatus.READY)
        .annotate(has_pins=Exists(Placement.objects.filter(model=OuterRef("pk"))))
        .first()
    )
    if record is None:
        record = find_by_alias(normalized)
    if record is None:
        raise ModelNotFound(name)
    return record


async def afind_ready_model(name: str) -> ModelRecord:
    """The async twin of find_ready_model, for the streaming views."""
    try:
        normalized = normalize_model_name(name)
    except ValueError:
        raise ModelNotFound(name) from None
    record = await ModelRecord.objects.filter(name=normalized, status=ModelStatus.READY).afirst()
    if record is None:
        record = await afind_by_alias(normalized)
    if record is None:
        raise ModelNotFound(name)
    return record


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def do_import_model(
    name: str,
    path: Path,
    *,
    chat_template: str | None = None,
    sha256: str | None = None,
    parts: Sequence[Path] = (),
    projector: Path | None = None,
) -> ModelRecord:
    """Register the local GGUF at ``path`` as ``name`` (replacing a record of that name).

    ``parts`` are the further files of a split GGUF whose first part is ``path``; ``projector``
    is the model's vision projector (an mmproj GGUF), when it has one. Reads the
    header for the metadata; ``chat_template`` overrides the file's own. Raises
    InvalidModelName or GGUFError before anything is written.
    """
    normalized = normalize_model_name(name)
    path = path.expanduser().resolve()
    meta = read_gguf_metadata(path, parts)
    fields = {
        "path": str(path),
        "projector": str(projector.expanduser().resolve()) if projector else "",
        "size": sum(p.stat().st_size for p in (path, *parts)),
        "sha256": sha256 or file_sha256(path),
        "architecture": meta.architecture,
        "family": meta.architecture,
        "parameter_count": meta.parameter_count,
        "parameter_size": meta.parameter_size,
        "quantization": meta.quantization,
        "context_length": meta.context_length,
        "embedding_length": meta.embedding_length,
        "chat_template": chat_template if chat_template is not None else meta.chat_template,
        "model_info": meta.model_info(),
        "status": ModelStatus.READY,
    }
    with transaction.atomic():
        record, _ = ModelRecord.objects.update_or_create(name=normalized, defaults=fields)
    return record


def find_model(name: str) -> ModelRecord:
    """The record called ``name`` in any status (``latest`` implied). Raises ModelNotFound."""
    try:
        normalized = normalize_model_name(name)
    except ValueError:
        raise ModelNotFound(name) from None
    record = ModelRecord.objects.filter(name=normalized).first()
    if record is None:
        raise ModelNotFound(name)
    return record


def do_copy_model(source: str, destination: str) -> ModelRecord:
    """A second name for the model ``source``: same file, metadata and settings. Replaces a
    record called ``destination``, as ``ollama cp`` does. Raises ModelNotFound or
    InvalidModelName before anything is written."""
    target = normalize_model_name(destination)
    original = find_model(source)
    if target == original.name:
        return original
    fields = {
        f.name: getattr(original, f.name)
        for f in ModelRecord._meta.concrete_fields
        if f.name not in ("id", "name", "created_at", "modified_at")
    }
    with transaction.atomic():
        record, _ = ModelRecord.objects.update_or_create(name=target, defaults=fields)
    return record


def model_files(record: ModelRecord) -> list[Path]:
    """The files a record loads: its path, and the other parts when it is a split GGUF."""
    first = Path(record.path)
    split = _SPLIT_PART.match(first.name)
    if not split:
        return [first]
    count = int(split.group("count"))
    return [
        first.with_name(f"{split.group('stem')}-{i:05d}-of-{count:05d}.gguf")
        for i in range(1, count + 1)
    ]


def do_delete_model(name: str) -> list[Path]:
    """Delete the record ``name``; its workers unload it. Its files are removed when they lie
    in ``MODELS_DIR`` and no other record uses them (a file imported from elsewhere is the
    user's own). Returns the files removed. Raises ModelNotFound."""
    record = find_model(name)
    model_id = record.pk
    removed: list[Path] = []
    with transaction.atomic():
        record.delete()
        shared = ModelRecord.objects.filter(path=record.path).exists()
        transaction.on_commit(lambda: _announce_deleted(model_id))
    if not shared:
        root = Path(settings.MODELS_DIR).resolve()
        for path in model_files(record):
            resolved = path.resolve()
            if resolved.is_relative_to(root) and resolved.is_file():
                resolved.unlink()
                removed.append(resolved)
    return removed


def _announce_deleted(model_id: int) -> None:
    from workers.broker.control import unload_everywhere

    try:
        unload_everywhere(model_id)
    except Exception:  # no broker: no worker holds it either
        log.info("no broker reachable; nothing to unload for model %s", model_id)
