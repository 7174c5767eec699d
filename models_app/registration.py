"""Registering a GGUF file on disk as a model record: what a pull, a quantization, a create
and ``herd import`` all end with.

Shared by the web process (``/api/create``, the import commands) and the worker's pull and
quantize jobs (``workers.worker.pulls``, ``workers.worker.quantize``), so it holds no request
handling: only the file, its header and the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import transaction

from models_app.gguf_metadata import read_gguf_metadata
from models_app.models import ModelRecord, ModelStatus
from models_app.names import normalize_model_name


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


def do_apply_settings(record: ModelRecord, fields: dict[str, Any]) -> ModelRecord:
    for name, value in fields.items():
        setattr(record, name, value)
    record.save()
    return record
