from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from models_app.bodies import OllamaDetails, OllamaModel, OpenAIModel
from models_app.capabilities import derive_capabilities, reasoning_tags, validate_reasoning_tags
from workers.broker.wire import ModelSpec


class ModelStatus(models.TextChoices):
    """A record is PENDING while its file is being fetched, READY once it can serve, FAILED
    when the file could not be had (terminal until the next pull)."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class ModelRecord(models.Model):
    """A model people can call by name: one GGUF file plus what the server needs to run it.

    Metadata comes from the GGUF header; ``chat_template``, ``system_prompt`` and
    ``default_options`` may be set by an admin, overriding what the file carries.
    """

    name = models.CharField(max_length=200, unique=True, help_text="name:tag, e.g. gemma3:270m")
    path = models.CharField(max_length=1000, help_text="the GGUF file (first part when split)")
    size = models.BigIntegerField(default=0, help_text="bytes on disk")
    sha256 = models.CharField(max_length=64, blank=True)
    projector = models.CharField(
        max_length=1000,
        blank=True,
        help_text="the vision projector (an mmproj GGUF) the model reads images with, if any",
    )
    architecture = models.CharField(max_length=64, blank=True)
    family = models.CharField(max_length=64, blank=True)
    parameter_count = models.BigIntegerField(default=0)
    parameter_size = models.CharField(max_length=32, blank=True, help_text="e.g. 268.10M")
    quantization = models.CharField(max_length=32, blank=True, help_text="e.g. Q4_K_M")
    context_length = models.PositiveIntegerField(default=0)
    embedding_length = models.PositiveIntegerField(default=0)
    chat_template = models.TextField(blank=True, help_text="Jinja chat template")
    system_prompt = models.TextField(blank=True)
    default_options = models.JSONField(default=dict, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    reasoning_tags = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_reasoning_tags],
        help_text=(
            'the tags around the model\'s reasoning, e.g. "<think> </think>"; "none": it does not '
            "reason apart; empty: found in the chat template"
        ),
    )
    messages = models.JSONField(
        default=list, blank=True, help_text="messages every chat starts with (Modelfile MESSAGE)"
    )
    license = models.TextField(blank=True)
    aliases = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'other names the model answers to, e.g. ["claude-sonnet-4-5"] for a coding agent '
            "that asks for Anthropic's models (name[:tag], each unused by other models)"
        ),
    )
    parent_model = models.CharField(
        max_length=200, blank=True, help_text="the model this one was created from, if any"
    )
    model_info = models.JSONField(
        default=dict, blank=True, help_text="the GGUF header's keys, without the vocabulary"
    )
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.READY)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from models_app.aliases import check_aliases

        try:
            self.aliases = check_aliases(self.aliases, self.name, exclude=self.pk)
        except ValueError as exc:
            raise ValidationError({"aliases": str(exc)}) from None
        # The one parameter a worker reads at load time: a bad value would fail every load.
        cache_type = (self.default_options or {}).get("kv_cache_type")
        if cache_type is not None:
            from models_app.parameters import ParameterError, coerce_parameter

            try:
                self.default_options["kv_cache_type"] = coerce_parameter(
                    "kv_cache_type", cache_type
                )
            except ParameterError as exc:
                raise ValidationError({"default_options": str(exc)}) from None

    @property
    def digest(self) -> str:
        return self.sha256

    def save(self, *args: Any, **kwargs: Any) -> None:
        # What the model can do follows its template, which an admin may edit.
        self.capabilities = self.derived_capabilities()
        super().save(*args, **kwargs)

    def derived_capabilities(self) -> list[str]:
        """Ollama's ``capabilities`` for the record as it stands (models_app.capabilities)."""
        return derive_capabilities(
            self.architecture,
            self.model_info or {},
            self.chat_template,
            self.reasoning_tags,
            has_projector=bool(self.projector),
        )

    def reasoning_tag_pair(self) -> tuple[str, str] | None:
        """The tags the model reasons between, or None (models_app.capabilities)."""
        return reasoning_tags(self.chat_template, self.reasoning_tags)

    def pinned_workers(self) -> list[str]:
        """Names of the workers an admin pinned this model to (workers.Placement)."""
        if getattr(self, "has_pins", True) is False:
            return []  # read with the record (services.find_ready_model): nothing to ask
        return list(self.placements.values_list("worker", flat=True))

    def to_spec(self) -> ModelSpec:
        """What a worker needs to run this model: tasks carry it, so a worker never has to
        read the database on the request path."""
        return ModelSpec(
            id=self.pk,
            name=self.name,
            path=self.path,
            sha256=self.sha256,
            projector=self.projector,
            context_length=self.context_length or 0,
            chat_template=self.chat_template,
            system_prompt=self.system_prompt,
            default_options=self.default_options or {},
            reasoning_tags=list(self.reasoning_tag_pair() or ()),
            messages=list(self.messages or []),
            modified_at=self.modified_at.isoformat() if self.modified_at else "",
            # Workers an admin pinned the model to: they keep it loaded.
            pinned_to=self.pinned_workers(),
        )

    def ollama_details(self) -> OllamaDetails:
        """Ollama's ``details`` object (``/api/tags``, ``/api/show``, ``/api/ps``)."""
        return {
            "parent_model": self.parent_model,
            "format": "gguf",
            "family": self.family,
            "families": [self.family] if self.family else None,
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }

    def to_ollama(self) -> OllamaModel:
        """One entry of Ollama's ``/api/tags``."""
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at.isoformat() if self.modified_at else None,
            "size": self.size,
            "digest": self.sha256,
            "details": self.ollama_details(),
        }

    def to_openai(self) -> OpenAIModel:
        return {
            "id": self.name,
            "object": "model",
            "created": int(self.created_at.timestamp()),
            "owned_by": "library",
        }


class PullStatus(models.TextChoices):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_PULL = (PullStatus.QUEUED, PullStatus.DOWNLOADING, PullStatus.VERIFYING)
FINISHED_PULL = (PullStatus.READY, PullStatus.FAILED, PullStatus.CANCELLED)


# The GGUF file types that are not quantized: quantizing from any other is requantizing.
FLOAT_TYPES = ("F32", "F16", "BF16")


class PullJob(models.Model):
    """One pull of a Hugging Face reference into a model record: the source of truth for it.

    The status moves QUEUED -> DOWNLOADING (a worker claimed it: ``worker_instance``) ->
    VERIFYING (every byte is on disk; sha256 being checked) -> READY (the record exists). Any
    active state may go to FAILED (hub error, checksum mismatch, no disk: ``error`` says which)
    or CANCELLED (someone asked). READY, FAILED and CANCELLED are terminal. A DOWNLOADING or
    VERIFYING job whose worker died goes back to QUEUED and is sent again; the next worker
    resumes from the partial file. At most one active job exists per name, so a second pull of
    a name joins the first.

    ``files`` is the plan resolved from the hub before the job was created: a list of
    ``{"name", "size", "sha256"}``, downloaded in order; ``completed`` counts the bytes on disk
    over all of them.
    """

    name = models.CharField(max_length=200, help_text="the model name the pull creates")
    repo_id = models.CharField(max_length=200, blank=True)
    revision = models.CharField(
        max_length=64, blank=True, help_text="the commit the plan was resolved at"
    )
    files = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=PullStatus.choices, default=PullStatus.QUEUED)
    total = models.BigIntegerField(default=0, help_text="bytes to download, all parts")
    completed = models.BigIntegerField(default=0, help_text="bytes on disk so far")
    error = models.TextField(blank=True)
    worker_instance = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    model = models.ForeignKey(
        ModelRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="pulls"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(status__in=["queued", "downloading", "verifying"]),
                name="one_active_pull_per_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_PULL

    def file_progress(self) -> list[dict[str, Any]]:
        """Each file with the bytes of it on disk: files download in order, so the job's
        ``completed`` fills them one after the other."""
        left = self.completed
        progress = []
        for entry in self.files:
            done = max(0, min(int(entry["size"]), left))
            left -= done
            progress.append({**entry, "completed": done})
        return progress

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "name": self.name,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "status": self.status,
            "total": self.total,
            "completed": self.completed,
            "error": self.error,
            "files": self.file_progress(),
            "model": self.model_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class QuantizeStatus(models.TextChoices):
    QUEUED = "queued"
    QUANTIZING = "quantizing"
    VERIFYING = "verifying"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_QUANTIZE = (QuantizeStatus.QUEUED, QuantizeStatus.QUANTIZING, QuantizeStatus.VERIFYING)
FINISHED_QUANTIZE = (QuantizeStatus.READY, QuantizeStatus.FAILED, QuantizeStatus.CANCELLED)


class QuantizeJob(models.Model):
    """One quantization of a model's file into a new model record (``/api/create`` with
    ``quantize``): the source of truth for it.

    The status moves QUEUED -> QUANTIZING (a worker claimed it: ``worker_instance``; llama.cpp
    writes the new file from ``source``, ``completed`` counting the bytes written against
    ``total``, an estimate) -> VERIFYING (the file is written; it is hashed and moved to the
    blob store) -> READY (the record exists, with ``record_fields``: the settings of the create
    request, such as system prompt, template, parameters and parent). Any active state may go
    to FAILED (``error`` says why) or CANCELLED (someone asked; it takes effect when llama.cpp
    returns). READY, FAILED and CANCELLED are terminal. A QUANTIZING or VERIFYING job whose
    worker died goes back to QUEUED and is sent again; the next worker starts the file over.
    At most one active quantization exists per name, and none while a pull of the name runs.
    """

    name = models.CharField(max_length=200, help_text="the model name the quantization creates")
    source = models.CharField(max_length=1000, help_text="the file quantized")
    source_quantization = models.CharField(max_length=32, blank=True)
    quantize = models.CharField(max_length=16, help_text="the type quantized to")
    record_fields = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=QuantizeStatus.choices, default=QuantizeStatus.QUEUED
    )
    total = models.BigIntegerField(default=0, help_text="the new file's estimated bytes")
    completed = models.BigIntegerField(default=0, help_text="bytes written so far")
    error = models.TextField(blank=True)
    worker_instance = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    model = models.ForeignKey(
        ModelRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="quantizations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(status__in=["queued", "quantizing", "verifying"]),
                name="one_active_quantize_per_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_QUANTIZE

    @property
    def requantize(self) -> bool:
        """The source is quantized already: llama.cpp must be told it requantizes."""
        return self.source_quantization.upper() not in FLOAT_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "name": self.name,
            "source_quantization": self.source_quantization,
            "quantize": self.quantize,
            "status": self.status,
            "total": self.total,
            "completed": self.completed,
            "error": self.error,
            "model": self.model_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
