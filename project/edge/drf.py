"""DRF views in an API family's error shape: the few API resources that are plain DRF views
(files, batches, the model records the pages use) answer errors as the edge's other views do."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from project.edge.context import ANONYMOUS, RequestContext, request_context
from project.edge.families import error_body
from project.errors import ApiError, BodyTooLarge, InvalidJson, NotFound, ValidationFailed


class FamilyErrors:
    """A mixin for DRF views: ``api_family`` names the shape their errors take."""

    api_family: ClassVar[str]

    def handle_exception(self, exc: Exception) -> Response:
        error = as_api_error(exc)
        if error is None:
            return super().handle_exception(exc)  # type: ignore[misc]
        response = Response(error_body(self.api_family, error), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response


def drf_request_context(request: Request | None) -> RequestContext:
    """Who asks, for a DRF view: the context the key middleware attached to the Django
    request DRF wraps (``ANONYMOUS`` without one)."""
    return ANONYMOUS if request is None else request_context(request._request)


def as_api_error(exc: Exception) -> ApiError | None:
    """``exc`` as the edge answers it; None for what DRF answers itself."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge()
    if isinstance(exc, RecursionError):  # DRF's JSONParser on a deeply nested body
        return InvalidJson("the request body is nested too deeply")
    if isinstance(exc, ValidationError):
        return ValidationFailed(exc.detail)
    if isinstance(exc, Http404):
        return NotFound("not found")
    if isinstance(exc, APIException):  # DRF's own: bad multipart, wrong method, parse errors
        detail: Any = exc.detail
        return ApiError(str(detail), status=exc.status_code, code=exc.default_code)
    return None
