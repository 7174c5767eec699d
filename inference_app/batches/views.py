"""``/v1/files`` and ``/v1/batches``, in OpenAI's shapes. Not on the token hot path, so these
are plain DRF views; the logic lives in ``inference_app.batches.services``.

Files and batches belong to the user of the key that made them (a batch's output files to the
batch's): listed, read, cancelled and deleted by that user, whichever of their keys asks, or by
staff. Anyone else gets the 404 of an id that does not exist, as stored responses answer.
With authentication off there is no user, and rows made then are everyone's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.lookup import KeyInfo
from inference_app.batches.files import FilePurpose, StoredFile
from inference_app.batches.models import BatchJob
from inference_app.batches.services import do_cancel_batch, do_create_batch
from project.edge.drf import FamilyErrors, drf_request_context
from project.edge.families import OPENAI
from project.errors import ApiError, NotFound, ValidationFailed

UPLOAD_PURPOSES = (FilePurpose.BATCH, FilePurpose.USER_DATA)


class OpenAIView(FamilyErrors, APIView):
    """DRF view answering in JSON, and errors in OpenAI's shape, whatever the client accepts
    (the openai client asks for file content with ``Accept: application/binary``)."""

    api_family = OPENAI
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        return JSONRenderer(), JSONRenderer.media_type


def _key(request: Request) -> KeyInfo | None:
    return drf_request_context(request).key


def owned(request: Request) -> Q:
    """The filter of the rows the request's key may see: its user's, and its team's where
    the key belongs to one; every row for staff."""
    key = _key(request)
    if key is None:
        return Q(user_id=None)
    if key.user_is_staff:
        return Q()
    mine = Q(user_id=key.user_id)
    return mine | Q(team_id=key.team_id) if key.team_id is not None else mine


def not_found(kind: str, key: str) -> NotFound:
    return NotFound(f"No such {kind}: {key}")


def page(
    objects: list[dict[str, Any]], has_more: bool, *, ids_required: bool = False
) -> dict[str, Any]:
    """One page of a list, as OpenAI's document has it: ``first_id`` and ``last_id`` are
    strings, left out of an empty page, or (where the document requires them, as on
    ``ListFilesResponse``) empty strings."""
    body: dict[str, Any] = {"object": "list", "data": objects, "has_more": has_more}
    if objects:
        body["first_id"], body["last_id"] = objects[0]["id"], objects[-1]["id"]
    elif ids_required:
        body["first_id"], body["last_id"] = "", ""
    return body


class FileListView(OpenAIView):
    parser_classes = [MultiPartParser]

    def get(self, request: Request) -> Response:
        files = StoredFile.objects.filter(owned(request))
        if purpose := request.query_params.get("purpose"):
            files = files.filter(purpose=purpose)
        return Response(page([f.to_openai() for f in files], has_more=False, ids_required=True))

    def post(self, request: Request) -> Response:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.HERD_MAX_UPLOAD:
            raise ApiError(
                f"files are limited to {settings.HERD_MAX_UPLOAD} bytes",
                status=413,
                param="file",
                code="file_too_large",
            )
        form: Any = request.data
        purpose = form.get("purpose")
        if purpose not in UPLOAD_PURPOSES:
            raise ApiError(
                f"purpose must be one of {', '.join(UPLOAD_PURPOSES)}",
                param="purpose",
                code="invalid_value",
            )
        upload = request.FILES.get("file")
        if upload is None:
            raise ApiError("a file is required", param="file", code="missing_required_parameter")
        if upload.size is not None and upload.size > settings.HERD_MAX_UPLOAD:
            raise ApiError(
                f"files are limited to {settings.HERD_MAX_UPLOAD} bytes",
                status=413,
                param="file",
                code="file_too_large",
            )
        key = _key(request)
        user_id = key.user_id if key is not None else None
        team_id = key.team_id if key is not None else None
        stored = StoredFile.create(
            purpose, upload.name or "upload", upload.read(), user_id, team_id
        )
        return Response(stored.to_openai())


class FileDetailView(OpenAIView):
    def get(self, request: Request, file_id: str) -> Response:
        stored = StoredFile.objects.filter(owned(request), pk=file_id).first()
        if stored is None:
            raise not_found("file", file_id)
        return Response(stored.to_openai())

    def delete(self, request: Request, file_id: str) -> Response:
        stored = StoredFile.objects.filter(owned(request), pk=file_id).first()
        if stored is None:
            raise not_found("file", file_id)
        if (
            BatchJob.objects.filter(input_file=stored)
            .exclude(status__in=("completed", "failed", "expired", "cancelled"))
            .exists()
        ):
            raise ApiError(
                "the file is the input of a running batch", param="file_id", code="file_in_use"
            )
        if BatchJob.objects.filter(input_file=stored).exists():
            # Finished batches keep pointing at their input: keep the row, drop the content.
            stored.path.unlink(missing_ok=True)
        else:
            stored.delete_with_content()
        return Response({"id": file_id, "object": "file", "deleted": True})


class FileContentView(OpenAIView):
    def get(self, request: Request, file_id: str) -> HttpResponse:
        stored = StoredFile.objects.filter(owned(request), pk=file_id).first()
        if stored is None or not stored.path.exists():
            raise not_found("file", file_id)
        return HttpResponse(stored.path.read_bytes(), content_type="application/octet-stream")


class CreateBatchSerializer(serializers.Serializer):
    input_file_id = serializers.CharField()
    endpoint = serializers.CharField()
    completion_window = serializers.CharField(default="24h")
    metadata = serializers.DictField(
        child=serializers.CharField(max_length=512), required=False, allow_null=True
    )


class BatchListView(OpenAIView):
    parser_classes = [JSONParser]

    def get(self, request: Request) -> Response:
        try:
            limit = max(1, min(100, int(request.query_params.get("limit", 20))))
        except ValueError:
            raise ApiError("limit must be an integer", param="limit") from None
        batches = BatchJob.objects.filter(owned(request))
        if after := request.query_params.get("after"):
            anchor = batches.filter(pk=after).first()
            if anchor is None:
                raise not_found("batch", after)
            batches = batches.filter(created_at__lte=anchor.created_at).exclude(pk=anchor.pk)
            batches = batches.exclude(created_at=anchor.created_at, id__gte=anchor.pk)
        chosen = list(batches[: limit + 1])
        return Response(page([b.to_openai() for b in chosen[:limit]], len(chosen) > limit))

    def post(self, request: Request) -> Response:
        serializer = CreateBatchSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationFailed(serializer.errors)
        data = serializer.validated_data
        key = _key(request)
        if not StoredFile.objects.filter(owned(request), pk=data["input_file_id"]).exists():
            raise not_found("file", data["input_file_id"])
        batch = do_create_batch(
            data["input_file_id"],
            data["endpoint"],
            data["completion_window"],
            data.get("metadata"),
            api_key_id=key.id if key is not None else None,
            user_id=key.user_id if key is not None else None,
            team_id=key.team_id if key is not None else None,
            may_use=key.allows if key is not None else lambda model: True,
        )
        return Response(batch.to_openai())


class BatchDetailView(OpenAIView):
    def get(self, request: Request, batch_id: str) -> Response:
        batch = BatchJob.objects.filter(owned(request), pk=batch_id).first()
        if batch is None:
            raise not_found("batch", batch_id)
        return Response(batch.to_openai())


class BatchCancelView(OpenAIView):
    def post(self, request: Request, batch_id: str) -> Response:
        if not BatchJob.objects.filter(owned(request), pk=batch_id).exists():
            raise not_found("batch", batch_id)
        return Response(do_cancel_batch(batch_id).to_openai())
