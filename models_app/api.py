"""The REST resources the web pages use: model records, pull jobs and quantize jobs, under
``/api/models/``, ``/api/pulls/`` and ``/api/quantizations/`` (paths Ollama does not use).
Errors answer in Ollama's ``{"error": ...}`` shape, like everything under ``/api``.
"""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from models_app.bodies import OllamaDetails
from models_app.models import ModelRecord, ModelStatus, PullJob, QuantizeJob
from models_app.pulls import check_pull_reference, do_cancel_pull, do_start_pull
from models_app.quantizations import do_cancel_quantize
from models_app.services import do_delete_model
from project.edge.drf import FamilyErrors, drf_request_context
from project.edge.families import OLLAMA
from project.errors import ApiError


class ModelRecordSerializer(serializers.ModelSerializer[ModelRecord]):
    details = serializers.SerializerMethodField()

    class Meta:
        model = ModelRecord
        fields = [
            "id",
            "name",
            "status",
            "path",
            "size",
            "sha256",
            "architecture",
            "family",
            "parameter_count",
            "parameter_size",
            "quantization",
            "context_length",
            "embedding_length",
            "capabilities",
            "details",
            "chat_template",
            "reasoning_tags",
            "system_prompt",
            "default_options",
            "created_at",
            "modified_at",
        ]
        # Only what an admin may change about a model; the rest comes from its file.
        read_only_fields = [
            f
            for f in fields
            if f not in ("chat_template", "reasoning_tags", "system_prompt", "default_options")
        ]

    def get_details(self, record: ModelRecord) -> OllamaDetails:
        return record.ollama_details()

    def to_representation(self, instance: ModelRecord) -> dict[str, Any]:
        shown: dict[str, Any] = super().to_representation(instance)
        if not _manages(self.context.get("request")):
            shown.pop("path", None)  # where the server keeps its files is staff's business
        return shown

    def validate_chat_template(self, value: str) -> str:
        try:
            ImmutableSandboxedEnvironment().parse(value)
        except jinja2.TemplateSyntaxError as exc:
            raise serializers.ValidationError(f"not a Jinja template: {exc}") from None
        return value

    def validate_default_options(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object of option names to values")
        return value


def _manages(request: Request | None) -> bool:
    """Whether the request sees every record as it is: keys off (the one local user), or a
    key of a staff user."""
    key = drf_request_context(request).key
    return key is None or key.user_is_staff


class OllamaShapedErrors(FamilyErrors):
    """DRF's errors in Ollama's ``{"error": "..."}`` shape."""

    api_family = OLLAMA


class ModelRecordViewSet(
    OllamaShapedErrors,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ModelRecord],
):
    """List, read, edit (template, system prompt, default options) and delete model records."""

    queryset = ModelRecord.objects.all()
    serializer_class = ModelRecordSerializer

    def get_queryset(self) -> Any:
        name = self.request.query_params.get("name")
        records = self.queryset.filter(name=name) if name else self.queryset
        key = drf_request_context(self.request).key
        if _manages(self.request):
            return records
        # An ordinary key sees what /api/tags shows it: the ready models it may use.
        ready = records.filter(status=ModelStatus.READY)
        return ready.filter(name__in=key.allowed_models) if key and key.allowed_models else ready

    def perform_destroy(self, instance: ModelRecord) -> None:
        do_delete_model(instance.name)


class PullJobSerializer(serializers.Serializer[PullJob]):
    def to_representation(self, instance: PullJob) -> dict[str, Any]:
        return instance.to_dict()


class PullJobViewSet(
    OllamaShapedErrors,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[PullJob],
):
    """Pull jobs with their progress; ``POST`` starts (or joins) one, ``cancel`` stops it."""

    queryset = PullJob.objects.all()
    serializer_class = PullJobSerializer

    def get_queryset(self) -> Any:
        name = self.request.query_params.get("name")
        return self.queryset.filter(name=name) if name else self.queryset

    def create(self, request: Request) -> Response:
        model = request.data.get("model") if isinstance(request.data, dict) else None
        if not isinstance(model, str):
            raise ApiError("model is required")
        job, joined = do_start_pull(check_pull_reference(model))
        return Response(
            job.to_dict(), status=status.HTTP_200_OK if joined else status.HTTP_202_ACCEPTED
        )

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if not do_cancel_pull(job.pk):
            raise ApiError(f"pull {job.pk} has already finished ({job.status})", status=409)
        job.refresh_from_db()
        return Response(job.to_dict())


class QuantizeJobSerializer(serializers.Serializer[QuantizeJob]):
    def to_representation(self, instance: QuantizeJob) -> dict[str, Any]:
        return instance.to_dict()


class QuantizeJobViewSet(
    OllamaShapedErrors,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[QuantizeJob],
):
    """Quantize jobs with their progress (``/api/create`` with ``quantize`` starts one);
    ``cancel`` stops one."""

    queryset = QuantizeJob.objects.all()
    serializer_class = QuantizeJobSerializer

    def get_queryset(self) -> Any:
        name = self.request.query_params.get("name")
        return self.queryset.filter(name=name) if name else self.queryset

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if not do_cancel_quantize(job.pk):
            raise ApiError(f"quantization {job.pk} has already finished ({job.status})", status=409)
        job.refresh_from_db()
        return Response(job.to_dict())
