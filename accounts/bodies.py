"""What the key middleware reads from a request's body: the same JSON the view will parse.

A JSON endpoint (a POST, PUT, PATCH or DELETE under ``/v1`` or ``/api``, but for the two
uploads: ``POST /v1/files``, multipart, and ``/api/blobs/``, a GGUF) takes a JSON body only.
A body under another declared ``Content-Type`` is refused with 415 before any view runs, so
the model check sees exactly what the view will use whatever the client declares, and a
browser's simple cross-site POST (``text/plain``, a form) reaches no view. An empty body, or
one sent without a ``Content-Type`` (``curl --data-binary @-`` with no header, Django's test
client), is read as JSON as before. So is a form-encoded body from a client that is not a
browser: ``curl -d '{...}'`` declares ``application/x-www-form-urlencoded``, Ollama's own
examples are written so, and Ollama reads them as JSON. A browser sends ``Origin`` with every
POST (``null`` where it hides the page), so a form posted from a page is still refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from project.edge.endpoint import read_json_body
from project.errors import ApiError

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Fields that name a model the request uses besides its own ``model`` (``name``):
# ``/api/copy``'s ``source`` and ``/api/create``'s ``from``.
OTHER_MODEL_FIELDS = ("source", "from")


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"

    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"this endpoint takes a JSON body: send 'Content-Type: application/json', "
            f"not '{content_type}'"
        )


@dataclass(frozen=True)
class NamedModels:
    """The models a body names: ``model`` (Ollama also says ``name``), then the others."""

    model: str | None = None
    others: tuple[str, ...] = field(default=())

    def all(self) -> tuple[str, ...]:
        return (self.model, *self.others) if self.model is not None else self.others


def takes_json(request: HttpRequest) -> bool:
    if request.method not in BODY_METHODS:
        return False
    path = request.path_info
    return path != "/v1/files" and not path.startswith("/api/blobs/")


def is_json_media(content_type: str) -> bool:
    """``application/json``, a ``+json`` type, or none declared."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or (
        media.startswith("application/") and media.endswith("+json")
    )


def is_curl_default(request: HttpRequest) -> bool:
    """``curl -d``'s form-encoded declaration on a body from outside a browser (no ``Origin``)."""
    media = (request.content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded" and "HTTP_ORIGIN" not in request.META


def refused_media(request: HttpRequest) -> UnsupportedMediaType | None:
    """The 415 for a body a JSON endpoint may not read, else None."""
    if not takes_json(request) or is_json_media(request.content_type or ""):
        return None
    if is_curl_default(request):
        return None
    try:
        empty = not request.body
    except RequestDataTooBig:
        empty = False
    return None if empty else UnsupportedMediaType(request.content_type or "")


def named_models(request: HttpRequest) -> NamedModels:
    """The models the JSON body of a request ``refused_media`` let through names (none when it
    is not JSON: the view answers that). Django keeps the body and ``read_json_body`` its
    parse, so the view reads it again for free."""
    if not takes_json(request):
        return NamedModels()
    try:
        data = read_json_body(request)
    except ApiError:
        return NamedModels()
    model = data.get("model") or data.get("name")
    others = tuple(
        value for name in OTHER_MODEL_FIELDS if isinstance(value := data.get(name), str) and value
    )
    return NamedModels(model if isinstance(model, str) else None, others)
