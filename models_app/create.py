"""Ollama's ``/api/create``: ``check_create`` validates a request into a ``CreatePlan``, and
``do_create`` makes the model.

A model is made ``from`` another (a variant: the same file, no copy, with its own template,
system prompt, parameters, messages and license, and the other named as its parent) or from
``files`` (a GGUF uploaded as a blob first). ``files`` may hold a second GGUF, the model's
vision projector (an ``mmproj`` file: its header's architecture is ``clip``, as Ollama tells
them apart), which a ``from`` request may give alone to add one to a model. Either way the
record is written at once, unless the request asks to ``quantize``: then a ``QuantizeJob`` goes
to the ``pulls`` queue and a worker writes the new file with llama.cpp's quantizer, as a pull
writes a download.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from django.conf import settings
from django.db import IntegrityError, transaction
from jinja2.sandbox import ImmutableSandboxedEnvironment

from models_app.aliases import check_aliases
from models_app.blobs import BlobRefused, blob_path, parse_digest
from models_app.gguf_metadata import GGUFError, estimate_quantized_size, read_gguf_metadata
from models_app.hub import check_free_disk
from models_app.models import ModelRecord, ModelStatus, QuantizeJob
from models_app.names import normalize_model_name
from models_app.parameters import ParameterError, coerce_parameters
from models_app.pulls import active_pull
from models_app.quantizations import active_quantize, send_quantize
from models_app.references import PullRefused
from models_app.registration import do_apply_settings, do_import_model
from models_app.services import find_ready_model
from project.errors import ApiError

# The types Ollama's ``quantize`` accepts that llama.cpp writes, by Ollama's names.
QUANTIZE_TYPES = (
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q8_0",
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "F16",
    "BF16",
)
# What a model may be quantized from: float weights, or Q8_0 (requantized).
QUANTIZABLE = ("F32", "F16", "BF16", "Q8_0")
MESSAGE_ROLES = ("system", "user", "assistant", "tool")

# What a variant takes from the model it is made from, besides its file and metadata.
_SETTINGS = ("chat_template", "system_prompt", "default_options", "messages", "license")


class CreateRefused(ApiError):
    """A create request that cannot be served; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status)


@dataclass
class CreatePlan:
    """A checked create request. ``base`` is the ``from`` model, or None when the model comes
    from the blob ``blob`` (``(file name, sha256)``). ``settings`` are the record fields the
    request sets; ``layers`` the Ollama status lines that describe what is used and made."""

    name: str
    base: ModelRecord | None
    blob: tuple[str, str] | None
    settings: dict[str, Any]
    quantize: str = ""
    layers: list[str] = field(default_factory=list)

    @property
    def source_path(self) -> Path:
        if self.base is not None:
            return Path(self.base.path)
        assert self.blob is not None
        return blob_path(self.blob[1])


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CreateRefused(f"{name} must be a string")
    return value


def _check_template(template: str) -> str:
    try:
        ImmutableSandboxedEnvironment().parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise CreateRefused(f"template error: not a Jinja chat template: {exc}") from None
    return template


def _check_messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise CreateRefused("messages must be a list of {role, content} objects")
    messages = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise CreateRefused(f"messages[{i}] must be an object with role and content")
        role, content = message.get("role"), message.get("content", "")
        if role not in MESSAGE_ROLES:
            raise CreateRefused(f"messages[{i}].role must be one of {', '.join(MESSAGE_ROLES)}")
        if not isinstance(content, str):
            raise CreateRefused(f"messages[{i}].content must be a string")
        messages.append({"role": role, "content": content})
    return messages


def _check_license(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return "\n\n".join(raw)
    raise CreateRefused("license must be a string or a list of strings")


def _check_blobs(files: Any) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """The model's blob and the projector's (``(file name, sha256)``, either may be None)."""
    if not isinstance(files, dict) or not files:
        raise CreateRefused('files must be an object of {"name.gguf": "sha256:<digest>"}')
    if len(files) > 2:
        raise CreateRefused(
            "files must name one GGUF file, and its vision projector if it has one "
            "(split GGUFs are not supported)"
        )
    model: tuple[str, str] | None = None
    projector: tuple[str, str] | None = None
    for filename, digest in files.items():
        blob = _check_blob(filename, digest)
        try:
            architecture = read_gguf_metadata(blob_path(blob[1])).architecture
        except GGUFError:
            raise CreateRefused(f"{filename} is not a GGUF file") from None
        if architecture == PROJECTOR_ARCHITECTURE:
            if projector is not None:
                raise CreateRefused("files name two vision projectors: a model has one")
            projector = blob
        elif model is not None:
            raise CreateRefused("files must name one GGUF file (split GGUFs are not supported)")
        else:
            model = blob
    return model, projector


# The architecture a vision projector's header names (llama.cpp's clip loader reads it).
PROJECTOR_ARCHITECTURE = "clip"


def _check_blob(filename: Any, digest: Any) -> tuple[str, str]:
    if not isinstance(filename, str) or not filename.lower().endswith(".gguf"):
        raise CreateRefused(f"{filename!r} is not a GGUF file: only .gguf files are supported")
    if not isinstance(digest, str):
        raise CreateRefused(f"files[{filename!r}] must be a digest string")
    try:
        sha256 = parse_digest(digest)
    except BlobRefused as exc:
        raise CreateRefused(exc.message) from None
    if not blob_path(sha256).is_file():
        raise CreateRefused(
            f"blob {digest} ({filename}) not found: upload it first with POST /api/blobs/{digest}"
        )
    return filename, sha256


def check_quantize(raw: str, source: str) -> str:
    """The quantization type asked for, in Ollama's spelling; raises CreateRefused for a type
    Herd cannot write or a source it cannot quantize from."""
    wanted = raw.strip().upper()
    if wanted not in QUANTIZE_TYPES:
        raise CreateRefused(
            f"unsupported quantization type {raw}: expected one of {', '.join(QUANTIZE_TYPES)}"
        )
    if source.upper() not in QUANTIZABLE:
        raise CreateRefused(
            f"cannot quantize a {source or 'unknown'} model: quantization starts from "
            f"{', '.join(QUANTIZABLE)} weights"
        )
    return wanted


def _layer(kind: str, text: str) -> str:
    return f"creating new layer sha256:{hashlib.sha256(f'{kind}:{text}'.encode()).hexdigest()}"


def check_create(body: dict[str, Any]) -> CreatePlan:
    """Validate a ``/api/create`` body. Raises CreateRefused, ModelNotFound (an unknown
    ``from``) or InvalidModelName; nothing is written."""
    raw_name = body.get("model") or body.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise CreateRefused("model is required")
    name = normalize_model_name(raw_name)
    if active_pull(name) is not None or active_quantize(name) is not None:
        raise CreateRefused(
            f"model '{name}' is being pulled or quantized: wait for it to finish or cancel it",
            409,
        )
    from_ = _string(body, "from")
    files = body.get("files")
    if not from_ and files is None:
        raise CreateRefused("neither 'from' or 'files' was specified")
    if from_ and files is not None and not (isinstance(files, dict) and files):
        raise CreateRefused("give 'from' or 'files', not both")
    model_blob, projector_blob = _check_blobs(files) if files is not None else (None, None)
    if from_ and model_blob is not None:
        raise CreateRefused("give 'from' or 'files', not both")
    if not from_ and model_blob is None:
        raise CreateRefused("files name a vision projector but no model")

    chosen: dict[str, Any] = {}
    template = _string(body, "template")
    if template is not None:
        chosen["chat_template"] = _check_template(template)
    system = _string(body, "system")
    if system is not None:
        chosen["system_prompt"] = system
    if body.get("parameters") is not None:
        if not isinstance(body["parameters"], dict):
            raise CreateRefused("parameters must be an object of parameter names to values")
        try:
            chosen["default_options"] = coerce_parameters(body["parameters"])
        except ParameterError as exc:
            raise CreateRefused(str(exc)) from None
    if body.get("messages") is not None:
        chosen["messages"] = _check_messages(body["messages"])
    if body.get("license") is not None:
        chosen["license"] = _check_license(body["license"])
    if body.get("aliases") is not None:
        existing = ModelRecord.objects.filter(name=name).values_list("pk", flat=True).first()
        try:
            chosen["aliases"] = check_aliases(body["aliases"], name, exclude=existing)
        except ValueError as exc:
            raise CreateRefused(f"aliases: {exc}") from None

    base: ModelRecord | None = None
    blob: tuple[str, str] | None = None
    layers: list[str] = []
    if from_:
        base = find_ready_model(from_)
        layers.append(f"using existing layer sha256:{base.sha256}")
        # Parameters add to the ones the model has, as Ollama merges them.
        if "default_options" in chosen:
            chosen["default_options"] = {**base.default_options, **chosen["default_options"]}
        chosen["parent_model"] = base.name if base.name != name else base.parent_model
        source_type = base.quantization
    else:
        blob = model_blob
        assert blob is not None
        layers.append("parsing GGUF")
        try:
            source_type = read_gguf_metadata(blob_path(blob[1])).quantization
        except GGUFError:
            raise CreateRefused(f"{blob[0]} is not a GGUF file") from None
        layers.append(f"using existing layer sha256:{blob[1]}")
    if projector_blob is not None:
        chosen["projector"] = str(blob_path(projector_blob[1]))
        layers.append(f"using existing layer sha256:{projector_blob[1]}")
    for kind, value in (
        ("template", chosen.get("chat_template")),
        ("system", chosen.get("system_prompt")),
        ("params", body.get("parameters")),
        ("messages", body.get("messages")),
        ("license", chosen.get("license")),
        ("aliases", ", ".join(chosen.get("aliases") or [])),
    ):
        if value:
            layers.append(_layer(kind, str(value)))

    quantize = ""
    raw_quantize = _string(body, "quantize")
    if raw_quantize:
        quantize = check_quantize(raw_quantize, source_type)
    return CreatePlan(name, base, blob, chosen, quantize, layers)


def variant_fields(plan: CreatePlan) -> dict[str, Any]:
    """The settings the new record gets: the base model's, then what the request sets."""
    fields: dict[str, Any] = {}
    if plan.base is not None:
        fields = {name: getattr(plan.base, name) for name in _SETTINGS}
        fields["parent_model"] = plan.base.parent_model
    fields.update(plan.settings)
    return fields


def do_create(plan: CreatePlan) -> tuple[ModelRecord | None, QuantizeJob | None]:
    """Make the model of ``plan``: the record at once, or the started quantize job.

    Raises CreateRefused (409 when a pull or quantize of the name started meanwhile; 507 when
    the quantized file would not fit)."""
    if plan.quantize:
        return None, _start_quantize(plan)
    fields = variant_fields(plan)
    if plan.base is not None:
        record = _copy_file_fields(plan.base, plan.name)
    else:
        assert plan.blob is not None
        record = do_import_model(plan.name, blob_path(plan.blob[1]), sha256=plan.blob[1])
    return do_apply_settings(record, fields), None


def _copy_file_fields(base: ModelRecord, name: str) -> ModelRecord:
    """A record ``name`` for the file of ``base``, with its metadata (the file is shared)."""
    if base.name == name:
        return base
    kept = ("id", "name", "created_at", "modified_at", *_SETTINGS, "parent_model")
    fields = {
        f.name: getattr(base, f.name)
        for f in ModelRecord._meta.concrete_fields
        if f.name not in kept
    }
    fields["status"] = ModelStatus.READY
    with transaction.atomic():
        record, _ = ModelRecord.objects.update_or_create(name=name, defaults=fields)
    return record


def _start_quantize(plan: CreatePlan) -> QuantizeJob:
    source = plan.source_path
    try:
        estimate = estimate_quantized_size(source, plan.quantize)
        check_free_disk(estimate, Path(settings.MODELS_DIR))
    except GGUFError as exc:
        raise CreateRefused(str(exc)) from None
    except PullRefused as exc:
        raise CreateRefused(str(exc), exc.status) from None
    base_type = (
        plan.base.quantization if plan.base is not None else read_gguf_metadata(source).quantization
    )
    fields = variant_fields(plan)
    try:
        with transaction.atomic():
            if active_pull(plan.name) is not None:
                raise IntegrityError("a pull of the name started meanwhile")
            job = QuantizeJob.objects.create(
                name=plan.name,
                source=str(source),
                quantize=plan.quantize,
                source_quantization=base_type,
                total=estimate,
                record_fields=fields,
            )
            transaction.on_commit(lambda: send_quantize(job.pk))
    except IntegrityError:
        raise CreateRefused(
            f"model '{plan.name}' is being pulled or quantized: wait for it to finish", 409
        ) from None
    return job
