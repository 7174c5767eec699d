"""Staff endpoints under ``/herd/``: keys, usage and the audit log; and ``/metrics``.

Staff authenticate with a key of a staff user, or with their admin session (then CSRF holds).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import metrics
from accounts.authentication import ApiKeyAuthentication
from accounts.models import ApiKey, AuditEntry
from accounts.reports import usage_totals
from accounts.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEntrySerializer,
    CreatedKeySerializer,
    UsageQuerySerializer,
    UsageRowSerializer,
)
from accounts.services import KeyRequestError, do_create_key, do_revoke_key


class StaffView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]


class KeyListView(StaffView):
    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        keys = ApiKey.objects.select_related("user", "team")
        return Response(ApiKeySerializer(keys, many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: CreatedKeySerializer})
    def post(self, request: Request) -> Response:
        """Create a key; the response carries its secret, this once only."""
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        user = data.pop("user", None) or request.user
        assert isinstance(user, User)  # IsAdminUser let only a staff user in
        try:
            created = do_create_key(data.pop("name"), user=user, actor=request.user, **data)
        except KeyRequestError as exc:
            raise ValidationError({"name": [str(exc)]}) from None
        body = {**CreatedKeySerializer(created.key).data, "secret": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class KeyRevokeView(StaffView):
    @extend_schema(request=None, responses=ApiKeySerializer)
    def post(self, request: Request, pk: int) -> Response:
        key = get_object_or_404(ApiKey.objects.select_related("user", "team"), pk=pk)
        do_revoke_key(key, request.user)
        return Response(ApiKeySerializer(key).data)


class UsageView(StaffView):
    @extend_schema(
        parameters=[UsageQuerySerializer],
        responses=UsageRowSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Requests and tokens, grouped by ``key``, ``team``, ``model`` or ``day``."""
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params: dict[str, Any] = dict(query.validated_data)
        rows = usage_totals(params.pop("group_by"), **params)
        return Response(UsageRowSerializer(rows, many=True).data)


class AuditListView(StaffView, ListAPIView):
    serializer_class = AuditEntrySerializer

    @extend_schema(
        parameters=[OpenApiParameter("action", str, description="only entries of this action")]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        entries = AuditEntry.objects.all()
        action = self.request.query_params.get("action")
        return entries.filter(action=action) if action else entries


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Guarded like the APIs by the key middleware."""
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
