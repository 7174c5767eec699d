"""What the API paths answer when no view does: an unrouted ``/v1/...`` or ``/api/...`` path
(percent-encoded ``..`` segments included) is a 404 in its family's error shape, and an error
Django itself catches there (outside any endpoint) is answered in that shape too, never with
an HTML page. Other paths keep Django's own pages."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from project.edge.endpoint import internal_error
from project.edge.families import error_response, family_of
from project.errors import ApiError, BodyTooLarge, NotFound


@csrf_exempt
def unrouted(request: HttpRequest, rest: str = "") -> HttpResponseBase:
    family = family_of(request.path_info)
    error = NotFound(f"no such endpoint: {request.method} {request.path_info}", code="not_found")
    return error_response(family or "ollama", error)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponseBase:
    family = family_of(request.path_info)
    if family is None:
        return defaults.page_not_found(request, exception)
    return unrouted(request)


def server_error(request: HttpRequest) -> HttpResponseBase:
    family = family_of(request.path_info)
    if family is None:
        return defaults.server_error(request)
    return internal_error(family, request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponseBase:
    """Django's 400 (a ``SuspiciousOperation``): a body over ``HERD_MAX_BODY`` read outside an
    endpoint is a 413, as it is inside one."""
    family = family_of(request.path_info)
    if family is None:
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error_response(family, BodyTooLarge())
    return error_response(family, ApiError(str(exception) or "bad request"))
